import { Caller, clusterUrl, query, type Replicas, startReplicas } from '@tokend/testing'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/** SPEC §9's limits across three real replica processes sharing one database. */
let cluster: Replicas
let callers: Caller[]

beforeAll(async () => {
  cluster = await startReplicas(clusterUrl(), 3, {
    TOKEND_MAX_ACTIVE_KEYS: '20',
    TOKEND_KEY_CREATIONS_PER_MINUTE: '10',
    TOKEND_KEY_CREATION_WINDOW_MS: '3000',
    TOKEND_LAST_USED_FLUSH_MS: '5000',
  })
  callers = cluster.replicas.map((replica) => new Caller(replica.url, cluster.bootstrapKey))
}, 120_000)

afterAll(() => cluster?.stop())

const at = (i: number) => callers[i % callers.length] as Caller
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  query<T>(cluster.databaseUrl, text, values)

async function newAccount(name: string) {
  const reply = await at(0).mutation('account.create', { name, plan: 'paid' })
  return reply.body.result.data.id as string
}

/** Issues keys into `accountId` until `count` exist, pausing for the creation limit. */
async function issueMany(accountId: string, count: number, input: Record<string, unknown> = {}) {
  const keys: { token: string; id: string }[] = []
  while (keys.length < count) {
    const reply = await at(keys.length).mutation('token.issue', { name: 'k', environment: 'live', accountId, ...input })
    if (reply.status === 429) {
      await sleep(Number(reply.headers.get('retry-after')) * 1000)
      continue
    }
    expect(reply.status).toBe(200)
    keys.push(reply.body.result.data)
  }
  return keys
}

describe('key limits across replicas', () => {
  it('refuses the 11th creation in a window with 429 and Retry-After, then allows it again', async () => {
    const accountId = await newAccount('burst')
    await sleep(100)
    const replies = []
    for (let i = 0; i < 11; i++) {
      replies.push(await at(i).mutation('token.issue', { name: `k${i}`, environment: 'live', accountId }))
    }
    expect(replies.slice(0, 10).map((r) => r.status)).toEqual(Array(10).fill(200))
    const refused = replies[10] as (typeof replies)[number]
    expect(refused.status).toBe(429)
    expect(refused.body.error.data.reason).toBe('rate_limited')
    const retryAfter = Number(refused.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(3)
    expect(refused.body.error.data.retryAfterMs).toBeGreaterThan(0)
    await sleep(retryAfter * 1000 + 100)
    const allowed = await at(1).mutation('token.issue', { name: 'after the window', environment: 'live', accountId })
    expect(allowed.status).toBe(200)
  })

  it('leaves exactly 20 active keys after 30 concurrent issues over three replicas', async () => {
    // The creation limit is the other test's business: space them out by raising it here.
    const accountId = await newAccount('race')
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        at(i).mutation('token.issue', { name: `race ${i}`, environment: 'live', accountId }),
      ),
    )
    const statuses = replies.map((reply) => reply.status)
    // 10 per window: the first 10 succeed at once; the rest are 429 or, later, 409.
    expect(statuses.filter((s) => s === 200)).toHaveLength(10)
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true)

    // Keep racing 30 at a time across windows until the account is full.
    for (let round = 0; round < 4; round++) {
      await sleep(3_100)
      const more = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          at(i).mutation('token.issue', { name: `race ${round}/${i}`, environment: 'live', accountId }),
        ),
      )
      for (const reply of more) {
        if (reply.status === 409) expect(reply.body.error.data.reason).toBe('token_limit_reached')
        else expect([200, 429]).toContain(reply.status)
      }
    }
    const [{ active }] = (await sql<{ active: number }>(
      'select count(*)::int as active from access_keys where account_id = $1 and revoked_at is null',
      [accountId],
    )) as [{ active: number }]
    expect(active).toBe(20)
    const full = await at(2).mutation('token.issue', { name: 'one more', environment: 'live', accountId })
    expect(full.status).toBe(409)
    expect(full.body.error.data.reason).toBe('token_limit_reached')
  }, 60_000)
})

describe('verify rate limits across replicas', () => {
  it('admits between 60 and 66 of 180 requests for 60 per window over three replicas', async () => {
    const accountId = await newAccount('ratelimited')
    const [key] = await issueMany(accountId, 1)
    const windowMs = 600_000
    // Stay clear of a window boundary so the whole burst falls in one window.
    const intoWindow = Date.now() % windowMs
    if (intoWindow > windowMs - 10_000) await sleep(windowMs - intoWindow + 100)
    const ratelimit = { name: 'GET /v1/recordings', limit: 60, windowMs }
    const results: any[] = []
    for (let wave = 0; wave < 6; wave++) {
      const replies = await Promise.all(
        Array.from({ length: 30 }, (_, i) => at(i).mutation('token.verify', { token: key?.token, ratelimit })),
      )
      results.push(...replies.map((reply) => reply.body.result.data))
    }
    const admitted = results.filter((r) => r.valid).length
    process.stdout.write(`rate limit 60/window over 3 replicas: admitted ${admitted} of ${results.length}\n`)
    expect(admitted).toBeGreaterThanOrEqual(60)
    expect(admitted).toBeLessThanOrEqual(66)
    const refused = results.find((r) => !r.valid)
    expect(refused).toMatchObject({ valid: false, reason: 'RATE_LIMITED' })
    expect(refused.retryAfterMs).toBeGreaterThan(0)
    expect(refused.retryAfterMs).toBeLessThanOrEqual(windowMs)
    // Another name has its own budget.
    const other = await at(0).mutation('token.verify', {
      token: key?.token,
      ratelimit: { ...ratelimit, name: 'other' },
    })
    expect(other.body.result.data.valid).toBe(true)
  })
})

describe('lastUsedAt', () => {
  it('shows a verify within 10 s without a write per verify', async () => {
    const accountId = await newAccount('usage')
    const [key] = await issueMany(accountId, 1)
    const before = (await at(0).query('token.get', { id: key?.id })).body.result.data
    expect(before.lastUsedAt).toBeNull()
    const verifiedAt = Date.now()
    for (let i = 0; i < 30; i++) await at(i).mutation('token.verify', { token: key?.token })
    let lastUsedAt: string | null = null
    while (Date.now() - verifiedAt < 10_000 && !lastUsedAt) {
      await sleep(250)
      lastUsedAt = (await at(1).query('token.get', { id: key?.id })).body.result.data.lastUsedAt
    }
    expect(lastUsedAt).not.toBeNull()
    expect(Date.parse(lastUsedAt as string)).toBeGreaterThanOrEqual(verifiedAt - 1_000)
  }, 20_000)
})

describe('leak response', () => {
  it('revokes reported keys on every replica and reports the rest back', async () => {
    const accountId = await newAccount('leaky')
    const [leaked, alsoLeaked] = await issueMany(accountId, 2)
    for (const caller of callers)
      expect((await caller.mutation('token.verify', { token: leaked?.token })).body.result.data.valid).toBe(true)
    await at(0).mutation('token.revoke', { id: alsoLeaked?.id })
    const reply = await at(1).mutation('token.reportLeaked', {
      tokens: [
        leaked?.token,
        'not a key',
        `${leaked?.token.slice(0, -6)}000000`,
        alsoLeaked?.token,
        'tk_live_unknownunknownunknownunknownunknownunknow',
      ],
    })
    expect(reply.status).toBe(200)
    expect(reply.body.result.data.revoked).toBe(1)
    expect(reply.body.result.data.results.map((r: { status: string }) => r.status)).toEqual([
      'revoked',
      'malformed',
      'malformed',
      'already_revoked',
      'malformed',
    ])
    expect(JSON.stringify(reply.body)).not.toContain(leaked?.token.slice(12))
    for (const caller of callers) {
      for (;;) {
        const result = (await caller.mutation('token.verify', { token: leaked?.token })).body.result.data
        if (!result.valid) {
          expect(result.reason).toBe('REVOKED')
          break
        }
      }
    }
    const audit = await at(2).query('audit.list', { accountId, action: 'token.revoke', targetId: leaked?.id })
    expect(audit.body.result.data.items[0].data).toEqual({ reason: 'leaked' })
    expect(cluster.replicas[1]?.output()).toContain('leaked key(s) revoked')
  })

  it('is refused to a customer admin without tokend:scanner', async () => {
    const accountId = await newAccount('not a scanner')
    const [admin] = await issueMany(accountId, 1, { role: 'admin' })
    const reply = await at(0)
      .as(admin?.token)
      .mutation('token.reportLeaked', { tokens: ['x'] })
    expect(reply.status).toBe(403)
  })
})
