import { Caller, clusterUrl, query, type Replicas, startReplicas } from '@tokend/testing'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * token.update (SPEC §14) across three real replica processes on one database: what it
 * changes, what it refuses (writing nothing), and that a narrowing reaches every replica
 * as a §6 change event — measured like revocation in revocation.test.ts.
 */
let cluster: Replicas
let callers: Caller[]
let customer: { accountId: string; admin: Caller; manager: Caller }

beforeAll(async () => {
  cluster = await startReplicas(clusterUrl(), 3, {
    TOKEND_MAX_ACTIVE_KEYS: '100000',
    TOKEND_KEY_CREATIONS_PER_MINUTE: '100000',
  })
  callers = cluster.replicas.map((replica) => new Caller(replica.url, cluster.bootstrapKey))
  const created = await at(0).mutation('account.create', { name: 'update customer', plan: 'paid' })
  const accountId = created.body.result.data.id as string
  const admin = await issueKey({ accountId, role: 'admin' })
  const manager = await issueKey({ accountId, role: 'manager' })
  customer = { accountId, admin: at(0).as(admin.token), manager: at(0).as(manager.token) }
}, 120_000)

afterAll(() => cluster?.stop())

const at = (i: number) => callers[i % callers.length] as Caller

const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  query<T>(cluster.databaseUrl, text, values)

async function issueKey(input: Record<string, unknown> = {}, caller = at(0)) {
  const reply = await caller.mutation('token.issue', { name: 'updated', environment: 'live', ...input })
  if (reply.status !== 200) throw new Error(`issue failed: ${JSON.stringify(reply.body)}`)
  return reply.body.result.data as { token: string; id: string; expiresAt: string | null }
}

async function verify(caller: Caller, input: Record<string, unknown>) {
  const reply = await caller.mutation('token.verify', input)
  return { status: reply.status, ...reply.body?.result?.data } as {
    status: number
    valid?: boolean
    reason?: string
    [field: string]: unknown
  }
}

/** Verifies until `done` says so; returns the ms it took, or throws after `limitMs`. */
async function until(
  caller: Caller,
  input: Record<string, unknown>,
  done: (result: Awaited<ReturnType<typeof verify>>) => boolean,
  limitMs: number,
) {
  const started = performance.now()
  for (;;) {
    const result = await verify(caller, input)
    const elapsed = performance.now() - started
    if (done(result)) return elapsed
    if (elapsed > limitMs) throw new Error(`not done after ${limitMs} ms: ${JSON.stringify(result)}`)
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

const row = async (id: string) =>
  (await sql('select name, detail, scopes, meta, allowed_cidrs, expires_at from access_keys where id = $1', [id]))[0]
const audits = async (id: string) =>
  (
    await sql<{ n: number }>(
      "select count(*)::int as n from audit_events where action = 'token.update' and target_id = $1",
      [id],
    )
  )[0]?.n

describe('token.update', () => {
  it('changes name, detail, scopes, meta, networks and shortens the expiry; audited; over tRPC and REST', async () => {
    const key = await issueKey({ scopes: ['calls:read', 'calls:write'], expiresIn: '90d', detail: 'old' })
    const sooner = new Date(Date.now() + 86_400_000).toISOString()
    const reply = await at(1).mutation('token.update', {
      id: key.id,
      name: 'renamed',
      detail: null,
      scopes: ['calls:read'],
      meta: { team: 'voice' },
      allowedCidrs: ['10.0.0.0/8'],
      expiresAt: sooner,
    })
    expect(reply.status).toBe(200)
    expect(reply.body.result.data).toMatchObject({
      id: key.id,
      name: 'renamed',
      detail: null,
      scopes: ['calls:read'],
      meta: { team: 'voice' },
      allowedCidrs: ['10.0.0.0/8'],
      expiresAt: sooner,
      status: 'active',
    })
    expect(await verify(at(1), { token: key.token, clientIp: '10.0.0.1' })).toMatchObject({
      valid: true,
      name: 'renamed',
      scopes: ['calls:read'],
      meta: { team: 'voice' },
      expiresAt: sooner,
    })
    const rest = await at(2).send<any>(`/api/v1/tokens/${key.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ meta: null, allowedCidrs: [] }),
    })
    expect(rest.status).toBe(200)
    expect(rest.body).toMatchObject({ id: key.id, meta: null, allowedCidrs: [], name: 'renamed' })
    const events = await at(0).query('audit.list', { targetId: key.id, action: 'token.update' })
    expect(events.body.result.data.items).toHaveLength(2)
    expect(events.body.result.data.items.at(-1).data).toMatchObject({
      scopes: ['calls:read'],
      previousScopes: ['calls:read', 'calls:write'],
      expiresAt: sooner,
    })
  })

  it('gives a never-expiring key an expiry, and lets an admin of the account update its own keys', async () => {
    const key = await issueKey({ accountId: customer.accountId })
    const when = new Date(Date.now() + 3_600_000).toISOString()
    const reply = await customer.admin.mutation('token.update', { id: key.id, expiresAt: when })
    expect(reply.status).toBe(200)
    expect(reply.body.result.data.expiresAt).toBe(when)
  })

  const refusals: Array<
    [string, () => Promise<{ caller: Caller; input: Record<string, unknown>; id: string }>, number, string]
  > = [
    [
      'a later expiry',
      async () => {
        const key = await issueKey({ expiresIn: '30d' })
        return { caller: at(0), id: key.id, input: { expiresAt: new Date(Date.now() + 60 * 86_400_000).toISOString() } }
      },
      400,
      'invalid_input',
    ],
    [
      'an expiry in the past',
      async () => {
        const key = await issueKey({ expiresIn: '30d' })
        return { caller: at(0), id: key.id, input: { expiresAt: new Date(Date.now() - 1000).toISOString() } }
      },
      400,
      'invalid_input',
    ],
    [
      'removing the expiry (null)',
      async () => {
        const key = await issueKey({ expiresIn: '30d' })
        return { caller: at(0), id: key.id, input: { expiresAt: null } }
      },
      400,
      'invalid_input',
    ],
    ['nothing to change', async () => ({ caller: at(0), id: (await issueKey()).id, input: {} }), 400, 'invalid_input'],
    [
      'meta over 4 KB',
      async () => ({ caller: at(0), id: (await issueKey()).id, input: { meta: { a: 'x'.repeat(4100) } } }),
      400,
      'invalid_input',
    ],
    [
      'meta not an object',
      async () => ({ caller: at(0), id: (await issueKey()).id, input: { meta: [1] } }),
      400,
      'invalid_input',
    ],
    [
      'meta with NUL',
      async () => ({ caller: at(0), id: (await issueKey()).id, input: { meta: { a: '\u0000' } } }),
      400,
      'invalid_input',
    ],
    [
      'a bad network',
      async () => ({ caller: at(0), id: (await issueKey()).id, input: { allowedCidrs: ['10.0.0.0/40'] } }),
      400,
      'invalid_input',
    ],
    [
      '33 networks',
      async () => ({
        caller: at(0),
        id: (await issueKey()).id,
        input: { allowedCidrs: Array.from({ length: 33 }, (_, i) => `10.${i}.0.0/16`) },
      }),
      400,
      'invalid_input',
    ],
    [
      'an unknown field',
      async () => ({ caller: at(0), id: (await issueKey()).id, input: { role: 'admin' } }),
      400,
      'invalid_input',
    ],
    ['an unknown id', async () => ({ caller: at(0), id: 'tok_nope', input: { name: 'x' } }), 404, 'not_found'],
    [
      "another account's key",
      async () => ({ caller: customer.admin, id: (await issueKey()).id, input: { scopes: [] } }),
      403,
      'forbidden',
    ],
    [
      'a manager key',
      async () => ({
        caller: customer.manager,
        id: (await issueKey({ accountId: customer.accountId })).id,
        input: { name: 'x' },
      }),
      403,
      'forbidden',
    ],
    [
      'a reserved scope the caller lacks',
      async () => ({
        caller: customer.admin,
        id: (await issueKey({ accountId: customer.accountId })).id,
        input: { scopes: ['tokend:verify'] },
      }),
      403,
      'forbidden',
    ],
    [
      'a revoked key',
      async () => {
        const key = await issueKey()
        await at(0).mutation('token.revoke', { id: key.id })
        return { caller: at(0), id: key.id, input: { name: 'x' } }
      },
      409,
      'token_revoked',
    ],
  ]

  for (const [what, prepare, status, reason] of refusals) {
    it(`refuses ${what} with ${status} ${reason} and writes nothing (tRPC and REST)`, async () => {
      const { caller, id, input } = await prepare()
      const before = await row(id)
      const trpc = await caller.mutation('token.update', { id, ...input })
      expect([trpc.status, trpc.body.error?.data?.reason]).toEqual([status, reason])
      const rest = await caller.send<any>(`/api/v1/tokens/${encodeURIComponent(id)}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      })
      expect([rest.status, rest.body.reason]).toEqual([status, reason])
      expect(await row(id)).toEqual(before)
      expect(await audits(id)).toBe(0)
    })
  }
})

describe('a narrowing update on three replicas', () => {
  it('is refused everywhere within the bound: scopes narrowed on one, INSUFFICIENT_SCOPE on the others', async () => {
    const ROUNDS = 100
    const required = { require: { scopes: ['calls:write'] } }
    const lags: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const key = await issueKey({ scopes: ['calls:read', 'calls:write'] })
      const input = { token: key.token, ...required }
      // Cached as valid on every replica first: the old, wider entry is there to be served.
      for (const caller of callers) expect((await verify(caller, input)).valid).toBe(true)
      const serving = round % 3
      const update = await at(serving).mutation('token.update', { id: key.id, scopes: ['calls:read'] })
      expect(update.status).toBe(200)
      // The serving replica refuses as soon as the call returns.
      expect(await verify(at(serving), input)).toMatchObject({ valid: false, reason: 'INSUFFICIENT_SCOPE' })
      const others = [0, 1, 2].filter((i) => i !== serving)
      lags.push(
        ...(await Promise.all(
          others.map((i) => until(at(i), input, (result) => result.reason === 'INSUFFICIENT_SCOPE', 5_000)),
        )),
      )
      // Once refused, never served wide again.
      for (const caller of callers) expect((await verify(caller, input)).reason).toBe('INSUFFICIENT_SCOPE')
    }
    lags.sort((a, b) => a - b)
    const report = {
      updates: ROUNDS,
      samples: lags.length,
      p50: percentile(lags, 50),
      p99: percentile(lags, 99),
      max: lags.at(-1),
    }
    process.stdout.write(
      `narrowing propagation (ms, update returned → INSUFFICIENT_SCOPE on another replica): ${JSON.stringify(report, (_, v) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v))}\n`,
    )
    expect(report.max).toBeLessThan(5_000) // the fail-safe bound; the figures are reported
  }, 180_000)

  it('binding a cached key to networks reaches every replica: IP_NOT_ALLOWED from outside', async () => {
    const key = await issueKey()
    const outside = { token: key.token, clientIp: '192.0.2.1' }
    for (const caller of callers) expect((await verify(caller, outside)).valid).toBe(true)
    expect((await at(2).mutation('token.update', { id: key.id, allowedCidrs: ['10.0.0.0/8'] })).status).toBe(200)
    expect(await verify(at(2), outside)).toMatchObject({ valid: false, reason: 'IP_NOT_ALLOWED' })
    for (const caller of callers) await until(caller, outside, (result) => result.reason === 'IP_NOT_ALLOWED', 5_000)
    for (const caller of callers) {
      expect(await verify(caller, { token: key.token, clientIp: '10.1.1.1' })).toMatchObject({ valid: true })
    }
  })
})
