import { createTokendClient, type TokendClient } from '@tokend/client'
import { Caller, clusterUrl, type Replicas, startReplicas } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * SPEC §14's derived tokens across three real replica processes on one Postgres: a key
 * exchanged on one replica, revoked on another, its derived token refused by the
 * revoking replica at once, by the others and by a subscribed `@tokend/client` (which
 * verifies offline, following a third replica's change stream) within §6's bound.
 */
let cluster: Replicas
let callers: Caller[]
let client: TokendClient

beforeAll(async () => {
  cluster = await startReplicas(clusterUrl(), 3, {
    TOKEND_MAX_ACTIVE_KEYS: '100000',
    TOKEND_KEY_CREATIONS_PER_MINUTE: '100000',
  })
  callers = cluster.replicas.map((replica) => new Caller(replica.url, cluster.bootstrapKey))
  client = createTokendClient({
    url: cluster.replicas[2]?.url as string,
    serviceKey: cluster.bootstrapKey,
    cache: true,
  })
  expect(await client.cacheReady(10_000)).toBe(true)
}, 120_000)

afterAll(async () => {
  client?.close()
  await cluster?.stop()
})

const at = (i: number) => callers[i] as Caller

async function verify(caller: Caller, token: string) {
  const reply = await caller.mutation('token.verify', { token, require: { audience: 'voice-api' } })
  expect(reply.status).toBe(200)
  return reply.body.result.data as { valid: boolean; reason?: string; kind?: string }
}

async function until(check: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = performance.now()
  for (;;) {
    if (await check()) return performance.now() - started
    if (performance.now() - started > limitMs) throw new Error(`not within ${limitMs} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

describe('a derived token on three replicas and a subscribed client', () => {
  it('is refused once its parent is revoked: by the revoking replica at once, elsewhere within the bound', async () => {
    const lags = { replicas: [] as number[], client: [] as number[] }
    for (let round = 0; round < 30; round++) {
      const issued = await at(round % 3).mutation('token.issue', {
        name: 'caller',
        environment: 'live',
        scopes: ['recordings:read'],
      })
      const key = issued.body.result.data as { token: string; id: string }
      const exchanged = await at(round % 3)
        .as(key.token)
        .mutation('token.exchange', { audience: 'voice-api' })
      expect(exchanged.status).toBe(200)
      const token = exchanged.body.result.data.token as string
      for (const caller of callers) expect(await verify(caller, token)).toMatchObject({ valid: true, kind: 'derived' })
      const before = client.stats.networkVerifies
      expect(await client.verify(token, { audience: 'voice-api' })).toMatchObject({ valid: true, kind: 'derived' })
      expect(await client.verify(token, { audience: 'voice-api' })).toMatchObject({ valid: true })
      expect(client.stats.networkVerifies - before).toBeLessThanOrEqual(1)

      const serving = (round + 1) % 3
      expect((await at(serving).mutation('token.revoke', { id: key.id })).status).toBe(200)
      const [clientLag, ...replicaLags] = await Promise.all([
        until(async () => !(await client.verify(token, { audience: 'voice-api' })).valid, 5_000),
        ...[0, 1, 2].map((i) =>
          i === serving
            ? verify(at(i), token).then((result) => {
                // No waiting on the replica that served the revocation.
                expect(result).toEqual({ valid: false, reason: 'REVOKED' })
                return 0
              })
            : until(async () => !(await verify(at(i), token)).valid, 5_000),
        ),
      ])
      lags.client.push(clientLag as number)
      lags.replicas.push(...replicaLags.filter((lag) => lag > 0))
      expect(await client.verify(token)).toEqual({ valid: false, reason: 'REVOKED' })
    }
    for (const [name, measured] of Object.entries(lags)) {
      measured.sort((a, b) => a - b)
      process.stdout.write(
        `derived token refused after its parent's revocation, ${name === 'client' ? 'subscribed client' : 'other replicas'}: p50 ${percentile(measured, 50).toFixed(1)} ms, p99 ${percentile(measured, 99).toFixed(1)} ms, max ${(measured.at(-1) as number).toFixed(1)} ms (n=${measured.length})\n`,
      )
    }
    // The fail-safe bound; the figures above are the measurement (the machine is shared).
    expect(Math.max(...lags.client, ...lags.replicas)).toBeLessThan(5_000)
  }, 180_000)
})
