import { randomBytes } from 'node:crypto'
import { digestKey, generateKey } from '@tokend/keys'
import { cacheKey } from '../../services/auth/src/cache/cache-key.ts'
import { KeyRecord, VerifyCache } from '../../services/auth/src/cache/verify-cache.ts'

/**
 * P9, run as `node --expose-gc --import tsx memory-worker.ts <entries>`: fills tokend's
 * verification cache with realistic records and prints the memory they hold as JSON.
 * Every record is built afresh from its own row, as rows parsed from Postgres are; each
 * has its own account (the worst case for the cache's sharing of account ids).
 */
const entries = Number(process.argv[2] ?? 100_000)
const gc = globalThis.gc
if (!gc) throw new Error('run with --expose-gc')

/** A row as Postgres hands it over: flat strings and a fresh scopes array for every key. */
function record(i: number): KeyRecord {
  const row = JSON.stringify({
    id: `tok_${randomBytes(13).toString('hex').toUpperCase()}`,
    accountId: `acc_${randomBytes(13).toString('hex').toUpperCase()}`,
    environment: i % 2 ? 'live' : 'test',
    role: i % 10 ? 'manager' : 'admin',
    scopes: ['recordings:read', 'transcripts:read'],
    name: `voice-api worker ${i}`,
    expiresAt: Date.now() + 90 * 86_400_000,
    disabled: false,
    revoked: false,
    accountActive: true,
    operator: false,
  })
  return KeyRecord.from(JSON.parse(row))
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
  await cache.lookup(cacheKey(digestKey(generateKey('tk', 'live'))), async () => value)
}
const after = measured()
if (cache.size !== entries) throw new Error(`the cache holds ${cache.size} entries, not ${entries}`)
const heap = after.heapUsed - before.heapUsed
const buffers = after.arrayBuffers - before.arrayBuffers
process.stdout.write(
  JSON.stringify({ entries, heapBytes: heap, arrayBufferBytes: buffers, bytesPerEntry: (heap + buffers) / entries }),
)
