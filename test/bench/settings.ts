export interface Settings {
  quick: boolean
  /** Seconds of load before the first measured repetition of each kind. */
  warmupS: number
  /** Seconds of each measured repetition. */
  durationS: number
  repetitions: number
  connections: number
  /** Keys in Postgres for the cache-miss load (more than the cache holds, so each one misses). */
  missKeys: number
  /** Distinct malformed / unknown keys in the flood loads. */
  floodKeys: number
  batchSize: number
  revocations: number
  /** Cached entries for the memory figure (tokend's default cache size). */
  memoryEntries: number
  /** Logins per second beside the hit load (P8). */
  loginsPerSecond: number
  /** Requests per CPU-time measurement (utime + stime over a fixed count), per contender. */
  cpuRequests: number
  /** Requests while the heap is sampled (P10). */
  heapRequests: number
  /** The fixed rates of P11, requests/s. */
  pacedRates: number[]
}

export const FULL: Settings = {
  quick: false,
  warmupS: 3,
  durationS: 10,
  repetitions: 5,
  connections: 50,
  missKeys: 200_000,
  floodKeys: 1_000,
  batchSize: 16,
  revocations: 200,
  memoryEntries: 100_000,
  loginsPerSecond: 20,
  cpuRequests: 20_000,
  heapRequests: 5_000,
  pacedRates: [1_000, 3_000, 5_000],
}

/** A one-minute smoke run: every scenario once, briefly. Its figures are not worth comparing. */
export const QUICK: Settings = {
  ...FULL,
  quick: true,
  warmupS: 1,
  durationS: 2,
  repetitions: 1,
  missKeys: 50_000,
  revocations: 50,
  cpuRequests: 3_000,
  heapRequests: 2_000,
}
