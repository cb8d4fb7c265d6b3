import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTokendClient } from '@tokend/client'
import { Caller, freePort } from '@tokend/testing'
import { type ServerProcess, startPinnedTokend } from './processes.ts'
import { type BenchEnv, round, type ScenarioResult, verdict } from './report-types.ts'
import { percentile } from './stats.ts'
import { BENCH_LIMITS, call, createAccount, issueKey } from './tokend-api.ts'

type Verdict = { status: number; valid?: boolean; reason?: string }

/** Something that verifies keys and must stop accepting a revoked one: a replica, or a client cache. */
interface Verifier {
  name: string
  verify(token: string): Promise<Verdict>
}

/**
 * P6's client cache: `@tokend/client` with its local cache on, subscribed to the
 * change stream of `replicaUrl`. It takes part in every round below like a replica
 * that did not serve the revocation, and its lags join the figure.
 */
async function startClientCache(replicaUrl: string, key: string): Promise<Verifier & { stop(): void }> {
  const client = createTokendClient({ url: replicaUrl, serviceKey: key, cache: {} })
  if (!(await client.cacheReady(10_000))) throw new Error('the client cache did not become ready')
  return {
    name: 'client cache',
    async verify(token) {
      try {
        return { status: 200, ...(await client.verify(token)) }
      } catch {
        return { status: 503 }
      }
    },
    stop: () => void client.close(),
  }
}

/**
 * P6, measured as test/revocation.test.ts does: three replica processes on one fresh
 * database (all on the server core). Each round issues a key, has every replica cache
 * it, revokes it through one replica, and times how long each other replica keeps
 * accepting it after the revoke call returned.
 */
export async function revocation(env: BenchEnv): Promise<ScenarioResult> {
  const { revocations } = env.settings
  env.log('P6: starting three replicas')
  const database = await env.createDatabase()
  const dir = await mkdtemp(join(tmpdir(), 'tokend-bench-replicas-'))
  const keyFile = join(dir, 'bootstrap.key')
  const ports = await Promise.all([freePort(), freePort(), freePort()])
  const started = await Promise.allSettled(
    ports.map((port) =>
      startPinnedTokend({
        DATABASE_URL: database.url,
        PORT: String(port),
        TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
        ...BENCH_LIMITS,
      }),
    ),
  )
  const replicas = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  let client: Awaited<ReturnType<typeof startClientCache>> | undefined
  try {
    const failed = started.find((result) => result.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
    const bootstrapKey = (await readFile(keyFile, 'utf8')).trim()
    const callers = replicas.map((replica) => new Caller(replica.url, bootstrapKey))
    const admin = callers[0] as Caller
    const accountId = await createAccount(admin, 'bench-revocation')
    const verifiers: Verifier[] = callers.map((caller, i) => ({
      name: `replica ${i}`,
      verify: (token) => verify(caller, token),
    }))
    client = await startClientCache(admin.url, bootstrapKey)
    if (client) verifiers.push(client)

    const lags: number[] = []
    const clientLags: number[] = []
    let servingRejectedAtOnce = 0
    for (let round = 0; round < revocations; round++) {
      if (round % 50 === 0) env.log(`P6: revocation ${round + 1}/${revocations}`)
      const key = await issueKey(admin, accountId, 'bench-revoked')
      for (const verifier of verifiers) {
        const answer = await verifier.verify(key.token) // cached everywhere before the revocation
        if (answer.valid !== true)
          throw new Error(`${verifier.name} did not accept a new key: ${JSON.stringify(answer)}`)
      }
      const serving = round % replicas.length
      await call(callers[serving] as Caller, 'token.revoke', { id: key.id })
      const revokedAt = performance.now()
      if ((await verifiers[serving]?.verify(key.token))?.reason === 'REVOKED') servingRejectedAtOnce++
      const others = verifiers.filter((_, i) => i !== serving)
      const times = await Promise.all(others.map((verifier) => rejectedAfter(verifier, key.token, revokedAt)))
      others.forEach((verifier, i) => {
        ;(verifier === client ? clientLags : lags).push(times[i] as number)
      })
    }

    lags.sort((a, b) => a - b)
    const p99 = percentile(lags, 99)
    const max = lags.at(-1) ?? Number.NaN
    const notes = [
      `${revocations} revocations, ${lags.length} replica samples: p50 ${round(percentile(lags, 50))} ms, ` +
        `p99 ${round(p99)} ms, max ${round(max)} ms (revoke returned → rejected on another replica)`,
      `the serving replica rejected the key on the next verify ${servingRejectedAtOnce}/${revocations} times`,
      client
        ? `client cache: p99 ${round(
            percentile(
              clientLags.sort((a, b) => a - b),
              99,
            ),
          )} ms, max ${round(Math.max(...clientLags))} ms`
        : 'client cache: not measured (it did not start)',
    ]
    const all = [...lags, ...clientLags].sort((a, b) => a - b)
    const problems = servingRejectedAtOnce < revocations ? ['the serving replica accepted a key it had revoked'] : []
    return {
      figures: [
        {
          id: 'P6',
          figure: client ? 'revocation visible on 3 replicas and a client cache' : 'revocation visible on 3 replicas',
          measured: percentile(all, 99),
          shown: `p99 ${round(percentile(all, 99))} ms, max ${round(all.at(-1) ?? Number.NaN)} ms`,
          target: 'p99 ≤ 50 ms, max ≤ 250 ms',
          verdict: verdict(percentile(all, 99) <= 50 && (all.at(-1) ?? Number.POSITIVE_INFINITY) <= 250, problems),
          notes,
        },
      ],
      series: [
        { name: 'revocation lag p99 (P6)', unit: 'ms', median: round(p99), repetitions: [round(p99)] },
        { name: 'revocation lag max (P6)', unit: 'ms', median: round(max), repetitions: [round(max)] },
      ],
    }
  } finally {
    client?.stop()
    await Promise.all(replicas.map((replica: ServerProcess) => replica.stop()))
    await database.drop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

async function verify(caller: Caller, token: string): Promise<Verdict> {
  const reply = await caller.mutation('token.verify', { token })
  return { status: reply.status, ...reply.body?.result?.data }
}

/**
 * Verifies every millisecond until the key is refused; ms since `since`. Gives up after
 * 5 s. Not back to back: three loops without a pause would keep the server core busy
 * with the measurement itself (some 6 000 verifies/s), delaying the very events measured.
 */
async function rejectedAfter(verifier: Verifier, token: string, since: number): Promise<number> {
  for (;;) {
    const answer = await verifier.verify(token)
    const elapsed = performance.now() - since
    if (answer.status !== 200 || answer.valid === false) return elapsed
    if (elapsed > 5_000) throw new Error(`${verifier.name} still accepted a revoked key after 5 s`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}
