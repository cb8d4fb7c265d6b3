/**
 * Measures the client against a real tokend on loopback, each pinned to its own core:
 * a network verify (one in flight), 50 concurrent verifies with and without batching,
 * the local cache's hit path in process, and how soon a revocation reaches the cache.
 *
 *   pnpm --filter @tokend/client bench        (BENCH_SECONDS=3, BENCH_DATABASE_URL optional)
 *
 * Load goes to 127.0.0.1 only and every phase stops after BENCH_SECONDS.
 */
import { join } from 'node:path'
import type { AppRouter } from '@tokend/auth'
import { createTestDatabase, repoRoot, type ServiceProcess, startEmbeddedPostgres, startService } from '@tokend/testing'
import { createTRPCClient, httpLink } from '@trpc/client'
import { createTokendClient, type TokendClient } from '../src/index.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const CONCURRENCY = 50
const write = (line: string) => process.stdout.write(`${line}\n`)

/** Runs `workers` loops of `call` for SECONDS; returns calls per second. */
async function rate(workers: number, call: () => Promise<unknown>): Promise<number> {
  const until = performance.now() + SECONDS * 1000
  let count = 0
  const loop = async () => {
    while (performance.now() < until) {
      await call()
      count++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: workers }, loop))
  return count / ((performance.now() - started) / 1000)
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

const postgres = process.env.BENCH_DATABASE_URL ? undefined : await startEmbeddedPostgres()
const database = await createTestDatabase(process.env.BENCH_DATABASE_URL ?? (postgres?.url as string))
let tokend: ServiceProcess | undefined
const clients: TokendClient[] = []
try {
  const serviceDir = join(repoRoot, 'services/auth')
  tokend = await startService(
    'taskset',
    ['-c', '0', join(serviceDir, 'node_modules/.bin/tsx'), '--conditions=tokend-source', 'src/main.ts'],
    {
      cwd: serviceDir,
      env: { DATABASE_URL: database.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
      ready: /"url":"(http:\/\/[^"]+)","msg":"tokend listening"/,
      timeoutMs: 60_000,
    },
  )
  const bootstrapKey = /\b(tk_live_[0-9A-Za-z]{49})\b/.exec(tokend.output())?.[1] as string
  const url = tokend.url
  const client = (options: { cache?: boolean } = {}) => {
    const created = createTokendClient({ url, serviceKey: bootstrapKey, ...options })
    clients.push(created)
    return created
  }
  const admin = client()
  const key = (await admin.trpc.token.issue.mutate({ name: 'bench', environment: 'live', scopes: ['a:b'] })).token
  const unbatched = createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${url}/trpc`, headers: { authorization: `Bearer ${bootstrapKey}` } })],
  })
  // Warm up tokend's cache, JIT and connections.
  await rate(CONCURRENCY, () => admin.verify(key))

  write(`tokend pinned to core 0; this process: ${process.env.BENCH_PINNED ?? 'unpinned'}; ${SECONDS} s per figure`)
  const network = await rate(1, () => admin.verify(key))
  write(`network verify, one in flight:            ${fmt(network)} verifies/s`)

  const unbatchedRate = await rate(CONCURRENCY, () => unbatched.token.verify.mutate({ token: key }))
  write(`${CONCURRENCY} concurrent, no batching (httpLink):   ${fmt(unbatchedRate)} verifies/s`)

  const batchedClient = client()
  const batched = await rate(CONCURRENCY, () => batchedClient.verify(key))
  const perRequest = batchedClient.stats.networkVerifies / batchedClient.stats.httpRequests
  write(
    `${CONCURRENCY} concurrent, batched (@tokend/client):  ${fmt(batched)} verifies/s ` +
      `(${perRequest.toFixed(1)} verifies per HTTP request; ${(batched / unbatchedRate).toFixed(1)}× unbatched)`,
  )

  const cached = client({ cache: true })
  if (!(await cached.cacheReady(10_000))) throw new Error('the cache never became ready')
  await cached.verify(key)
  const hits = await rate(1, () => cached.verify(key, { scopes: ['a:b'] }))
  write(
    `cache hit path, in process:               ${fmt(hits)} verifies/s (${(hits / network).toFixed(0)}× a network verify)`,
  )

  const latencies: number[] = []
  for (let i = 0; i < 30; i++) {
    const issued = await admin.trpc.token.issue.mutate({ name: `revoke ${i}`, environment: 'live' })
    await cached.verify(issued.token)
    await admin.trpc.token.revoke.mutate({ id: issued.id })
    const started = performance.now()
    while ((await cached.verify(issued.token)).valid) await new Promise((resolve) => setImmediate(resolve))
    latencies.push(performance.now() - started)
  }
  write(
    `revocation reaching the client cache (after revoke returns, n=30): p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`,
  )
} finally {
  for (const each of clients) each.close()
  await tokend?.stop()
  await database.drop()
  await postgres?.destroy()
}
