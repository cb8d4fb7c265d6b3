import { randomBytes } from 'node:crypto'
import { digestKey, generateKey } from '@tokend/keys'
import { type KeyRecord, VerifyCache } from '../../services/auth/src/cache/verify-cache.ts'

/**
 * P9, run as `node --expose-gc --import tsx memory-worker.ts <entries>`: fills tokend's
 * verification cache with realistic records and prints the memory they hold as JSON.
 * Everything is built afresh per record, as rows parsed from Postgres would be.
 */
const entries = Number(process.argv[2] ?? 100_000)
const gc = globalThis.gc
if (!gc) throw new Error('run with --expose-gc')

function record(i: number): KeyRecord {
  return {
    id: `tok_${randomBytes(13).toString('hex').toUpperCase()}`,
    accountId: `acc_${randomBytes(13).toString('hex').toUpperCase()}`,
    environment: i % 2 ? 'live' : 'test',
    role: i % 10 ? 'manager' : 'admin',
    scopes: ['recordings', 'transcripts'].map((resource) => `${resource}:read`),
    name: `voice-api worker ${i}`,
    expiresAt: Date.now() + 90 * 86_400_000,
    disabled: false,
    revoked: false,
    accountActive: true,
    operator: false,
  }
}

function measured() {
  gc?.()
  gc?.()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return { heapUsed, arrayBuffers }
}

const before = measured()
// Sized as tokend sizes it by default; lru-cache allocates its slots up front, so they count.
const cache = new VerifyCache({ maxEntries: entries, ttlMs: 60_000, negativeTtlMs: 5_000 })
cache.resume()
for (let i = 0; i < entries; i++) {
  const value = record(i)
  await cache.lookup(digestKey(generateKey('tk', 'live')), async () => value)
}
const after = measured()
if (cache.size !== entries) throw new Error(`the cache holds ${cache.size} entries, not ${entries}`)
const heap = after.heapUsed - before.heapUsed
const buffers = after.arrayBuffers - before.arrayBuffers
process.stdout.write(
  JSON.stringify({ entries, heapBytes: heap, arrayBufferBytes: buffers, bytesPerEntry: (heap + buffers) / entries }),
)
