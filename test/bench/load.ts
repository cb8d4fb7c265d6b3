import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '@tokend/testing'
import { CLIENT_CORE, pinnedCommand, track } from './processes.ts'
import type { Percentiles } from './stats.ts'

export interface LoadJob {
  /** Full URL of the request, path and query included; always POST. */
  url: string
  headers: Record<string, string>
  /** Request bodies, used in turn starting at `offset`; a single body is sent every time. */
  bodies: string[]
  offset?: number
  connections: number
  durationS: number
  /**
   * Requests per second sent on a fixed schedule (open loop). Without it autocannon
   * sends as fast as the server answers. (autocannon's own `overallRate` is a quota per
   * connection per second, sent in a burst at each second's start: at "half the
   * maximum rate" half of every second would run at full load, so it cannot measure P5.)
   */
  pacedRate?: number
  /** Stop after this many requests instead of after `durationS` (saturating loads only). */
  amount?: number
}

export interface LoadResult {
  /** Responses received. */
  requests: number
  durationS: number
  /** Responses per second. */
  rps: number
  statusCodes: Record<string, number>
  non2xx: number
  /** Connection errors (not timeouts). */
  errors: number
  timeouts: number
  /** Latency of every response, ms. */
  latency: Percentiles
  /** Bodies taken: where the next job continues to get fresh ones. */
  bodiesUsed: number
}

/**
 * Runs one load in a child process pinned to the client core (`load-worker.ts`), so
 * the load generator never competes with the server for its core.
 */
export function runLoad(job: LoadJob): Promise<LoadResult> {
  return runLoadWorker('load-worker.ts', job)
}

/**
 * Runs `worker` (a file of test/bench) pinned to the client core: the job goes in as JSON
 * on its stdin, a LoadResult comes back as JSON on its stdout.
 */
export function runLoadWorker(worker: string, job: unknown): Promise<LoadResult> {
  const [command, args] = pinnedCommand(CLIENT_CORE, process.execPath, [
    '--conditions=tokend-source',
    '--import',
    'tsx',
    join(repoRoot, 'test/bench', worker),
  ])
  const child = track(spawn(command, args, { cwd: join(repoRoot, 'test'), stdio: ['pipe', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk) => (stdout += chunk))
  child.stderr?.on('data', (chunk) => (stderr += chunk))
  child.stdin?.end(JSON.stringify(job))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(JSON.parse(stdout) as LoadResult)
      else reject(new Error(`${worker} ended with ${signal ?? code}:\n${stderr}`))
    })
  })
}
