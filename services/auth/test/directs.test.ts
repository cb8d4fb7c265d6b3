import { digestKey, directTopic, mayDirectSubscribe } from '@tokend/keys'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, newAccount, newSession, startTestApp, type TestApp } from './harness.ts'

let t: TestApp
let customer: Awaited<ReturnType<typeof newAccount>>

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp()
  customer = await newAccount(t.operator, 'directs')
})

const RESOURCE_ID = 'a1b2c3d4-e5f6-7890-abcd-ef1234567890'
const anonymous = () => t.operator.as(undefined)

async function createDirect(admin = customer.admin, input: Record<string, unknown> = {}) {
  const reply = await admin.mutation('direct.create', { resourceType: 'ai', resourceId: RESOURCE_ID, ...input })
  expect(reply.status).toBe(200)
  return reply.body.result.data as { id: string; hash: string; accountId: string; environment: string }
}

async function boot(directHash: unknown) {
  return anonymous().mutation('auth.boot', directHash === undefined ? {} : { directHash })
}

async function verify(token: string) {
  const reply = await t.operator.mutation('token.verify', { token })
  expect(reply.status).toBe(200)
  return reply.body.result.data
}

describe('direct links', () => {
  it('creates a link whose hash is returned once and stored only as a digest', async () => {
    const direct = await createDirect()
    expect(direct).toMatchObject({
      id: expect.stringMatching(/^dir_/),
      hash: expect.stringMatching(/^direct\.[\w-]{43}$/),
      accountId: customer.accountId,
      resourceType: 'ai',
      resourceId: RESOURCE_ID,
      environment: 'live',
    })
    const listed = (await customer.admin.query('direct.list', {})).body.result.data.items
    const item = listed.find((entry: { id: string }) => entry.id === direct.id)
    expect(item).toMatchObject({ start: direct.hash.slice(0, 11), resourceType: 'ai', resourceId: RESOURCE_ID })
    expect(JSON.stringify(listed)).not.toContain(direct.hash.slice(11))
    const { rows } = await sql<{ dump: string }>`select json_agg(d)::text as dump from directs d`.execute(t.app.deps.db)
    expect(rows[0]?.dump).not.toContain(direct.hash.slice(11))
    expect(rows[0]?.dump).toContain(digestKey(direct.hash))
  })

  it('boots a 4-hour direct token that verifies as that resource only', async () => {
    const direct = await createDirect()
    const before = Date.now()
    const reply = await boot(direct.hash)
    expect(reply.status).toBe(200)
    const booted = reply.body.result.data
    expect(booted).toEqual({
      token: expect.stringMatching(/^eyJ/),
      type: 'direct',
      resourceType: 'ai',
      resourceId: RESOURCE_ID,
      accountId: customer.accountId,
      expiresAt: expect.any(String),
    })
    expect(Math.abs(Date.parse(booted.expiresAt) - before - 4 * 3_600_000)).toBeLessThan(60_000)
    const verified = await verify(booted.token)
    expect(verified).toEqual({
      valid: true,
      kind: 'direct',
      tokenId: direct.id,
      accountId: customer.accountId,
      environment: 'live',
      role: null,
      scopes: [],
      name: `ai:${RESOURCE_ID}`,
      expiresAt: booted.expiresAt,
      resource: { type: 'ai', id: RESOURCE_ID },
    })
    // The topic rule, fed with what verify says about the token.
    const resource = { accountId: verified.accountId, resourceType: 'ai', resourceId: verified.resource.id }
    expect(mayDirectSubscribe(resource, `customer_id:${customer.accountId}:ai:${RESOURCE_ID}`)).toBe(true)
    expect(mayDirectSubscribe(resource, directTopic(resource))).toBe(true)
    expect(mayDirectSubscribe(resource, `customer_id:${customer.accountId}`)).toBe(false)
    expect(mayDirectSubscribe(resource, `customer_id:${customer.accountId}:ai`)).toBe(false)
    expect(mayDirectSubscribe(resource, `customer_id:${customer.accountId}:ai:other`)).toBe(false)

    // Any scope or role requirement fails: the token reaches its resource, nothing more.
    const scoped = await t.operator.mutation('token.verify', {
      token: booted.token,
      require: { scopes: ['recordings:read'] },
    })
    expect(scoped.body.result.data).toMatchObject({ valid: false, reason: 'INSUFFICIENT_SCOPE' })
    const asAdmin = await t.operator.mutation('token.verify', { token: booted.token, require: { role: 'admin' } })
    expect(asAdmin.body.result.data).toMatchObject({ valid: false, reason: 'INSUFFICIENT_SCOPE' })
  })

  it("is no credential for tokend's own procedures", async () => {
    const booted = (await boot((await createDirect()).hash)).body.result.data
    for (const reply of [
      await t.operator.as(booted.token).query('me'),
      await t.operator.as(booted.token).query('token.list', {}),
      await t.operator.as(booted.token).mutation('direct.create', { resourceType: 'ai', resourceId: 'x' }),
    ]) {
      expect(reply.status).toBe(403)
      expect(reply.body.error.message).toMatch(/reaches only its own resource/)
    }
  })

  describe('auth.boot answers 400 invalid_input on directHash, each case with its own message', () => {
    const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
      ['missing', async () => undefined, /directHash is required/],
      ['empty', async () => '', /directHash is empty/],
      ['without the direct. prefix', async () => 'abc123def456', /must start with "direct\."/],
      ['not a string', async () => 42, /must be a string/],
      ['unknown', async () => `direct.${'x'.repeat(43)}`, /does not resolve to any resource/],
      [
        'deleted',
        async () => {
          const direct = await createDirect()
          await customer.admin.mutation('direct.delete', { id: direct.id })
          return direct.hash
        },
        /does not resolve to any resource/,
      ],
      [
        'of a suspended account',
        async () => {
          const account = await newAccount(t.operator, 'suspended-directs')
          const direct = await createDirect(account.admin)
          await t.operator.mutation('account.setStatus', { accountId: account.accountId, status: 'suspended' })
          return direct.hash
        },
        /account is not active/,
      ],
    ]
    it.each(cases)('%s', async (_name, hash, message) => {
      const reply = await boot(await hash())
      expect(reply.status).toBe(400)
      expect(reply.body.error.data.reason).toBe('invalid_input')
      expect(reply.body.error.data.issues).toEqual([{ path: 'directHash', message: expect.stringMatching(message) }])
      expect(reply.body.error.message).toMatch(message)
    })

    it('missing body', async () => {
      const reply = await anonymous().mutation('auth.boot')
      expect(reply.status).toBe(400)
      expect(reply.body.error.data.issues).toEqual([{ path: 'directHash', message: 'directHash is required' }])
    })
  })

  it('deleting a link rejects the tokens booted from it at once', async () => {
    const direct = await createDirect()
    const booted = (await boot(direct.hash)).body.result.data
    expect(await verify(booted.token)).toMatchObject({ valid: true })
    const deleted = await customer.admin.mutation('direct.delete', { id: direct.id })
    expect(deleted.body.result.data).toMatchObject({ id: direct.id, deletedAt: expect.any(String) })
    expect(await verify(booted.token)).toEqual({ valid: false, reason: 'REVOKED' })
    expect((await customer.admin.mutation('direct.delete', { id: direct.id })).status).toBe(404)
  })

  it('suspending the account rejects its direct tokens; reactivating restores them', async () => {
    const account = await newAccount(t.operator, 'suspend-direct')
    const booted = (await boot((await createDirect(account.admin)).hash)).body.result.data
    expect(await verify(booted.token)).toMatchObject({ valid: true })
    await t.operator.mutation('account.setStatus', { accountId: account.accountId, status: 'suspended' })
    expect(await verify(booted.token)).toEqual({ valid: false, reason: 'ACCOUNT_SUSPENDED' })
    await t.operator.mutation('account.setStatus', { accountId: account.accountId, status: 'active' })
    expect(await verify(booted.token)).toMatchObject({ valid: true })
  })

  it('lets managers list but not create or delete; refuses other accounts with 403', async () => {
    const manager = await newSession(customer.admin, { role: 'manager' })
    const direct = await createDirect()
    expect((await manager.session.query('direct.list', {})).status).toBe(200)
    expect((await manager.session.mutation('direct.create', { resourceType: 'ai', resourceId: 'x' })).status).toBe(403)
    expect((await manager.session.mutation('direct.delete', { id: direct.id })).status).toBe(403)
    const other = await newAccount(t.operator, 'other-directs')
    expect((await other.admin.mutation('direct.delete', { id: direct.id })).status).toBe(403)
    expect((await other.admin.query('direct.list', { accountId: customer.accountId })).status).toBe(403)
    expect((await boot(direct.hash)).status).toBe(200) // untouched
    const admin = await newSession(customer.admin, { role: 'admin' })
    expect((await admin.session.mutation('direct.delete', { id: direct.id })).status).toBe(200)
  })

  it('follows the plan: trial accounts link to test resources only', async () => {
    const created = await t.operator.mutation('account.create', { name: 'trial-directs', plan: 'trial' })
    const accountId = created.body.result.data.id
    const admin = t.operator.as((await issue(t.operator, { role: 'admin', accountId })).token)
    expect((await createDirect(admin)).environment).toBe('test')
    const live = await admin.mutation('direct.create', { resourceType: 'ai', resourceId: 'x', environment: 'live' })
    expect(live.status).toBe(403)
    expect(live.body.error.data.reason).toBe('plan_required')
  })

  it('audits create, boot and delete', async () => {
    const direct = await createDirect()
    await boot(direct.hash)
    await customer.admin.mutation('direct.delete', { id: direct.id })
    const events = await t.app.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('target_id', '=', direct.id)
      .orderBy('id')
      .execute()
    expect(events.map((event) => [event.action, event.actor_type])).toEqual([
      ['direct.create', 'access_key'],
      ['auth.boot', 'anonymous'],
      ['direct.delete', 'access_key'],
    ])
    expect(JSON.stringify(events)).not.toContain(direct.hash)
  })
})
