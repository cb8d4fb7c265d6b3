import { freePort, query } from '@tokend/testing'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CreditLedger } from '../src/credits/credit-ledger.ts'
import type { CheckRequest } from '../src/grpc/generated/envoy/service/auth/v3/CheckRequest.ts'
import type { CheckResponse__Output } from '../src/grpc/generated/envoy/service/auth/v3/CheckResponse.ts'
import type { VerifyRequest } from '../src/grpc/generated/tokend/v1/VerifyRequest.ts'
import type { VerifyResponse__Output } from '../src/grpc/generated/tokend/v1/VerifyResponse.ts'
import { bearer, call, failure, tokendClients } from './grpc-client.ts'
import { Caller, issue, startTestApp, type TestApp } from './harness.ts'

/**
 * Usage credits (SPEC §14) on one replica: issue, spend with `cost`, USAGE_EXCEEDED on
 * every transport, refills on the injected clock, and bad input refused before anything
 * is written. The three-replica bound is test/credits-replicas.test.ts.
 */
const DAY = 86_400_000
// Noon UTC on a day whose month has days left: a day's refill stays in the month.
let now = Date.UTC(2026, 11, 3, 12)
let t: TestApp
let clients: ReturnType<typeof tokendClients>

beforeAll(async () => {
  const port = await freePort()
  t = await startTestApp({ TOKEND_GRPC_PORT: String(port) }, undefined, { clock: () => now })
  clients = tokendClients(`127.0.0.1:${port}`)
}, 60_000)

afterAll(async () => {
  clients?.close()
  await t?.stop()
})

async function verify(token: string, extra: Record<string, unknown> = {}) {
  const reply = await t.operator.mutation('token.verify', { token, ...extra })
  expect(reply.status).toBe(200)
  return reply.body.result.data
}

async function rest(path: string, body: unknown) {
  const response = await fetch(`${t.url}/api/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.bootstrapKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as any }
}

async function stored(id: string) {
  const rows = await query(t.databaseUrl, 'select remaining, generation from key_credits where key_id = $1', [id])
  return rows[0] as { remaining: number; generation: number } | undefined
}

/** Gives back every replica-held lease, so Postgres holds all that is left. */
async function settle() {
  await t.app.deps.credits.releaseAll()
}

describe('credits at token.issue', () => {
  it('are answered by the issue call and spent one per verify, down to USAGE_EXCEEDED', async () => {
    const key = await issue(t.operator, { credits: { remaining: 3 } })
    expect(key.credits).toEqual({ remaining: 3, refill: null })
    expect(await verify(key.token)).toMatchObject({ valid: true, kind: 'access_key', remaining: 2 })
    expect(await verify(key.token)).toMatchObject({ valid: true, remaining: 1 })
    expect(await verify(key.token)).toMatchObject({ valid: true, remaining: 0 })
    expect(await verify(key.token)).toEqual({ valid: false, reason: 'USAGE_EXCEEDED', remaining: 0 })
    await settle()
    expect((await stored(key.id))?.remaining).toBe(0)
    const got = await t.operator.query('token.get', { id: key.id })
    expect(got.body.result.data.credits).toEqual({ remaining: 0, refill: null })
    const listed = await t.operator.query('token.list', { limit: 100 })
    const items = listed.body.result.data.items as Array<{ id: string; credits?: unknown }>
    expect(items.find((item) => item.id === key.id)?.credits).toEqual({ remaining: 0, refill: null })
    expect(items.filter((item) => item.credits === undefined).length).toBeGreaterThan(0)
  })

  it('leave keys without credits as they were: no remaining, cost ignored', async () => {
    const key = await issue(t.operator)
    expect(key.credits).toBeUndefined()
    const result = await verify(key.token, { cost: 5 })
    expect(result.valid).toBe(true)
    expect(result).not.toHaveProperty('remaining')
    expect(await stored(key.id)).toBeUndefined()
  })

  it('spend `cost`; 0 checks without spending; too few left refuses and spends nothing', async () => {
    const key = await issue(t.operator, { credits: { remaining: 10 } })
    expect(await verify(key.token, { cost: 0 })).toMatchObject({ valid: true, remaining: 10 })
    expect(await verify(key.token, { cost: 4 })).toMatchObject({ valid: true, remaining: 6 })
    expect(await verify(key.token, { cost: 7 })).toEqual({ valid: false, reason: 'USAGE_EXCEEDED', remaining: 6 })
    expect(await verify(key.token, { cost: 6 })).toMatchObject({ valid: true, remaining: 0 })
    expect(await verify(key.token, { cost: 0 })).toMatchObject({ valid: false, reason: 'USAGE_EXCEEDED' })
  })

  it('are spent only when everything else allows the call', async () => {
    const key = await issue(t.operator, { credits: { remaining: 2 }, scopes: ['a:read'] })
    expect(await verify(key.token, { require: { scopes: ['a:write'] } })).toMatchObject({
      reason: 'INSUFFICIENT_SCOPE',
    })
    expect(await verify(key.token, { cost: 0 })).toMatchObject({ valid: true, remaining: 2 })
  })

  it('answer USAGE_EXCEEDED over REST, gRPC, forward-auth and ext_authz (403 usage_exceeded)', async () => {
    const key = await issue(t.operator, { credits: { remaining: 3 } })
    expect(await rest('/tokens/verify', { token: key.token })).toMatchObject({
      status: 200,
      body: { valid: true, remaining: 2 },
    })
    const grpcVerify = (request: VerifyRequest) =>
      call<VerifyRequest, VerifyResponse__Output>(
        clients.tokens.Verify,
        clients.tokens,
        request,
        bearer(t.bootstrapKey),
      )
    // proto3 `optional`: unset spends 1, an explicit 0 spends nothing.
    expect(await grpcVerify({ token: key.token, cost: 0 })).toMatchObject({ valid: true, remaining: 2 })
    expect(await grpcVerify({ token: key.token })).toMatchObject({ valid: true, remaining: 1 })
    const edge = await fetch(`${t.url}/edge/auth`, { headers: { authorization: `Bearer ${key.token}` } })
    expect(edge.status).toBe(200)
    const refused = await fetch(`${t.url}/edge/auth`, { headers: { authorization: `Bearer ${key.token}` } })
    expect(refused.status).toBe(403)
    expect(refused.headers.get('x-tokend-reason')).toBe('usage_exceeded')
    expect(((await refused.json()) as any).error.code).toBe('usage_exceeded')
    expect(await grpcVerify({ token: key.token })).toMatchObject({
      valid: false,
      reason: 'USAGE_EXCEEDED',
      remaining: 0,
    })
    // Envoy's ext_authz: the same refusal, as a denied_response.
    const http = { id: '1', method: 'GET', path: '/v1/x', host: 'voice.example', scheme: 'https' }
    const checked = await call<CheckRequest, CheckResponse__Output>(
      clients.authorization.Check,
      clients.authorization,
      { attributes: { request: { http: { ...http, headers: { authorization: `Bearer ${key.token}` } } } } },
    )
    expect(checked.status?.code).toBe(7) // PERMISSION_DENIED
    expect(checked.deniedResponse?.status?.code).toBe('Forbidden')
    expect(JSON.parse(checked.deniedResponse?.body ?? '{}').error.code).toBe('usage_exceeded')
    expect(await rest('/tokens/verify', { token: key.token })).toEqual({
      status: 200,
      body: { valid: false, reason: 'USAGE_EXCEEDED', remaining: 0 },
    })
  })

  it('refill at the UTC day and month boundary on the injected clock, once', async () => {
    const daily = await issue(t.operator, { credits: { remaining: 2, refill: { amount: 5, interval: 'day' } } })
    expect(daily.credits).toEqual({ remaining: 2, refill: { amount: 5, interval: 'day' } })
    const monthly = await issue(t.operator, { credits: { remaining: 1, refill: { amount: 3, interval: 'month' } } })
    for (const remaining of [1, 0]) expect(await verify(daily.token)).toMatchObject({ remaining })
    expect(await verify(monthly.token)).toMatchObject({ remaining: 0 })
    expect(await verify(daily.token)).toMatchObject({ reason: 'USAGE_EXCEEDED' })
    // Still the same day: nothing comes back.
    now += 11 * 3_600_000
    expect(await verify(daily.token)).toMatchObject({ reason: 'USAGE_EXCEEDED' })
    // Past midnight UTC: the day's budget is back, as `amount` (not added to what was left).
    now += 3_600_000
    expect(await verify(daily.token)).toMatchObject({ valid: true, remaining: 4 })
    expect(await verify(monthly.token)).toMatchObject({ reason: 'USAGE_EXCEEDED' })
    const generation = (await stored(daily.id))?.generation
    await settle()
    expect(await verify(daily.token)).toMatchObject({ valid: true, remaining: 3 })
    expect((await stored(daily.id))?.generation).toBe(generation)
    // The first of next month (UTC): the monthly budget is back too.
    now = Date.UTC(2027, 0, 1, 0, 0, 1)
    expect(await verify(monthly.token)).toMatchObject({ valid: true, remaining: 2 })
    expect(await verify(daily.token)).toMatchObject({ valid: true, remaining: 4 })
    now += DAY
  })

  it('go to the successor on rotation', async () => {
    const key = await issue(t.operator, { credits: { remaining: 5 } })
    await verify(key.token)
    await settle()
    const rotated = await t.operator.mutation('token.rotate', { id: key.id })
    expect(rotated.status).toBe(200)
    expect(rotated.body.result.data.credits).toEqual({ remaining: 4, refill: null })
    expect(await verify(rotated.body.result.data.token)).toMatchObject({ valid: true, remaining: 3 })
  })
})

describe('derived tokens of a key with credits', () => {
  it("spend their parent key's credits, one per verify, down to USAGE_EXCEEDED", async () => {
    const key = await issue(t.operator, { credits: { remaining: 2 } })
    const exchanged = await new Caller(t.url, key.token).mutation('token.exchange', { audience: 'billing' })
    expect(exchanged.status).toBe(200)
    const { token } = exchanged.body.result.data as { token: string }
    expect(await verify(token)).toMatchObject({ valid: true, kind: 'derived', tokenId: key.id, remaining: 1 })
    expect(await verify(token, { cost: 0 })).toMatchObject({ valid: true, remaining: 1 })
    expect(await verify(key.token)).toMatchObject({ valid: true, remaining: 0 })
    expect(await verify(token)).toEqual({ valid: false, reason: 'USAGE_EXCEEDED', remaining: 0 })
  })
})

describe('credits through token.update', () => {
  const update = async (id: string, credits: unknown) => {
    const reply = await t.operator.mutation('token.update', { id, credits })
    expect(reply.status).toBe(200)
    return reply.body.result.data
  }

  it('sets, changes and removes credits with a change event; leases of the old budget are not given back', async () => {
    const key = await issue(t.operator)
    expect(await verify(key.token)).not.toHaveProperty('remaining')
    await update(key.id, { remaining: 1000 })
    // The event reaches this replica's cache: the key now has credits.
    await expect.poll(async () => (await verify(key.token, { cost: 0 })).remaining, { timeout: 2_000 }).toBe(1000)
    expect(await verify(key.token)).toMatchObject({ remaining: 999 })
    // This replica now holds a lease; a new budget replaces it, whatever was leased.
    expect((await stored(key.id))?.remaining).toBeLessThan(999)
    await update(key.id, { remaining: 5 })
    await expect.poll(async () => (await verify(key.token, { cost: 0 })).remaining, { timeout: 2_000 }).toBe(5)
    await settle()
    expect((await stored(key.id))?.remaining).toBe(5)
    await update(key.id, null)
    await expect.poll(async () => verify(key.token, { cost: 0 }), { timeout: 2_000 }).not.toHaveProperty('remaining')
    expect(await stored(key.id)).toBeUndefined()
  })

  it('gives back a lease when its key changes (disable), and at once', async () => {
    const key = await issue(t.operator, { credits: { remaining: 1000 } })
    expect(await verify(key.token)).toMatchObject({ remaining: 999 })
    expect((await stored(key.id))?.remaining).toBeLessThan(999)
    const disabled = await t.operator.mutation('token.setDisabled', { id: key.id, disabled: true })
    expect(disabled.status).toBe(200)
    await expect.poll(async () => (await stored(key.id))?.remaining, { timeout: 2_000 }).toBe(999)
    expect(await verify(key.token)).toEqual({ valid: false, reason: 'DISABLED' })
  })
})

describe('CreditLedger on three replicas sharing one pool', () => {
  it('never spends more than the budget, and Postgres keeps the rest exactly, whatever the interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 7 })), {
          minLength: 1,
          maxLength: 200,
        }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 16 }),
        async (budget, spends, maxLease, share) => {
          const key = await issue(t.operator, { credits: { remaining: budget } })
          const { pool, logger } = t.app.deps
          const ledgers = [0, 1, 2].map(() => new CreditLedger({ pool, logger, maxLease, share, clock: () => now }))
          const outcomes = await Promise.all(
            spends.map(async ([replica, cost]) => ({
              cost,
              spent: await (ledgers[replica] as CreditLedger).spend(key.id, cost),
            })),
          )
          const spent = outcomes.reduce((sum, { cost, spent }) => sum + (spent.ok ? cost : 0), 0)
          expect(spent).toBeLessThanOrEqual(budget)
          await Promise.all(ledgers.map((ledger) => ledger.releaseAll()))
          expect((await stored(key.id))?.remaining).toBe(budget - spent)
          // Spent one at a time on one replica, what is left goes to the last credit.
          const last = ledgers[0] as CreditLedger
          let more = 0
          while ((await last.spend(key.id, 1)).ok) more++
          expect(spent + more).toBe(budget)
        },
      ),
      { numRuns: 25 },
    )
  }, 120_000)
})

describe('bad input', () => {
  const badCredits: Array<[string, unknown]> = [
    ['negative', { remaining: -1 }],
    ['fractional', { remaining: 1.5 }],
    ['huge', { remaining: 1e13 }],
    ['unsafe', { remaining: 2 ** 60 }],
    ['a string', { remaining: '10' }],
    ['missing remaining', {}],
    ['an unknown field', { remaining: 1, spent: 0 }],
    ['a bad interval', { remaining: 1, refill: { amount: 10, interval: 'week' } }],
    ['a refill of 0', { remaining: 1, refill: { amount: 0, interval: 'day' } }],
    ['a fractional refill', { remaining: 1, refill: { amount: 2.5, interval: 'month' } }],
    ['a refill without interval', { remaining: 1, refill: { amount: 2 } }],
    ['null', null],
  ]

  it.each(badCredits)(
    'token.issue refuses credits %s with 400 and writes nothing (tRPC and REST)',
    async (_, credits) => {
      const [before] = await query(t.databaseUrl, 'select (select count(*) from access_keys)::int as keys')
      const reply = await t.operator.mutation('token.issue', { name: 'bad', environment: 'test', credits })
      expect(reply.status).toBe(400)
      expect(reply.body.error.data.reason).toBe('invalid_input')
      const viaRest = await rest('/tokens', { name: 'bad', environment: 'test', credits })
      expect(viaRest.status).toBe(400)
      expect(viaRest.body.reason).toBe('invalid_input')
      const [after] = await query(t.databaseUrl, 'select (select count(*) from access_keys)::int as keys')
      expect(after).toEqual(before)
    },
  )

  it.each([
    ['negative', -1],
    ['fractional', 0.5],
    ['huge', 1e7],
    ['infinite-ish', 1e308],
    ['a string', '1'],
    ['null', null],
  ])('token.verify refuses a %s cost with 400 and spends nothing, on every transport', async (_, cost) => {
    const key = await issue(t.operator, { credits: { remaining: 5 } })
    const reply = await t.operator.mutation('token.verify', { token: key.token, cost })
    expect(reply.status).toBe(400)
    expect(reply.body.error.data.reason).toBe('invalid_input')
    expect((await rest('/tokens/verify', { token: key.token, cost })).status).toBe(400)
    const batch = await t.operator.send<any>('/trpc/token.verify,token.verify?batch=1', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ 0: { token: key.token, cost }, 1: { token: key.token, cost } }),
    })
    expect(batch.status).toBe(400)
    if (typeof cost === 'number' && Number.isSafeInteger(cost)) {
      const grpcFailure = await failure(
        call(clients.tokens.Verify, clients.tokens, { token: key.token, cost }, bearer(t.bootstrapKey)),
      )
      expect(grpcFailure.reason).toBe('invalid_input')
    }
    expect(await verify(key.token, { cost: 0 })).toMatchObject({ valid: true, remaining: 5 })
  })
})
