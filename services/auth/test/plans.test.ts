import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Caller, createUser, issue, newAccount, newSession, startTestApp, type TestApp } from './harness.ts'

let t: TestApp

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp({ TOKEND_TRIAL_KEY_DAYS: '15' })
})

const DAY_MS = 86_400_000

/** A trial account and an admin key for it (issued by the operator, so `test`). */
async function trialAccount(name = 'trial') {
  const created = await t.operator.mutation('account.create', { name, plan: 'trial' })
  const accountId = created.body.result.data.id as string
  const admin = await issue(t.operator, { name: `${name} admin`, role: 'admin', accountId, environment: 'test' })
  return { accountId, admin: t.operator.as(admin.token) as Caller, adminKeyId: admin.id }
}

function daysUntil(iso: unknown): number {
  return Math.round((Date.parse(iso as string) - Date.now()) / DAY_MS)
}

async function keyCount(accountId: string): Promise<number> {
  const rows = await t.app.deps.db.selectFrom('access_keys').select('id').where('account_id', '=', accountId).execute()
  return rows.length
}

describe('trial accounts', () => {
  it('cannot hold live keys: 403 plan_required, nothing written', async () => {
    const trial = await trialAccount()
    const before = await keyCount(trial.accountId)
    for (const caller of [trial.admin, t.operator]) {
      const reply = await caller.mutation('token.issue', {
        name: 'prod',
        environment: 'live',
        accountId: trial.accountId,
      })
      expect(reply.status).toBe(403)
      expect(reply.body.error.data.reason).toBe('plan_required')
      expect(reply.body.error.message).toMatch(/live keys .* need the paid plan/)
    }
    expect(await keyCount(trial.accountId)).toBe(before)
  })

  it('gives every test key an expiry within the plan bound (15 days here)', async () => {
    const trial = await trialAccount()
    expect(daysUntil((await issue(trial.admin)).expiresAt)).toBe(15)
    expect(daysUntil((await issue(trial.admin, { expiresIn: 'never' })).expiresAt)).toBe(15)
    expect(daysUntil((await issue(trial.admin, { expiresIn: '1y' })).expiresAt)).toBe(15)
    const soon = new Date(Date.now() + 3 * DAY_MS).toISOString()
    expect((await issue(trial.admin, { expiresAt: soon })).expiresAt).toBe(soon)
    // Rotation keeps the bound too.
    const rotated = await trial.admin.mutation('token.rotate', { id: trial.adminKeyId })
    expect(daysUntil(rotated.body.result.data.expiresAt)).toBeLessThanOrEqual(15)
  })

  it('moves to paid: live keys are allowed from then on', async () => {
    const trial = await trialAccount()
    const person = await newSession(trial.admin, { role: 'admin' })
    const moved = await t.operator.mutation('account.setPlan', { accountId: trial.accountId, plan: 'paid' })
    expect(moved.status).toBe(200)
    expect(moved.body.result.data).toMatchObject({ id: trial.accountId, plan: 'paid' })
    // Its admins' sessions are live now and issue live keys; its test keys stay in the sandbox.
    expect((await trial.admin.mutation('token.issue', { name: 'prod', environment: 'live' })).status).toBe(403)
    const live = await issue(person.session, { name: 'prod', environment: 'live' })
    expect(live.expiresAt).toBeNull()
    const events = await t.app.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'account.set_plan')
      .where('account_id', '=', trial.accountId)
      .execute()
    expect(events.map((event) => event.data)).toEqual([{ from: 'trial', to: 'paid' }])
  })

  it('moves back to trial only without live keys or links, bringing test keys within the bound', async () => {
    const trial = await trialAccount()
    const person = await newSession(trial.admin, { role: 'admin' })
    await t.operator.mutation('account.setPlan', { accountId: trial.accountId, plan: 'paid' })
    const live = await issue(person.session, { name: 'prod', environment: 'live' })
    const forever = await issue(trial.admin, { name: 'sandbox', environment: 'test' })
    expect(forever.expiresAt).toBeNull()

    const refused = await t.operator.mutation('account.setPlan', { accountId: trial.accountId, plan: 'trial' })
    expect(refused.status).toBe(409)
    expect(refused.body.error.message).toMatch(/1 live key/)
    expect((await t.operator.query('account.list', { limit: 100 })).body.result.data.items).toContainEqual(
      expect.objectContaining({ id: trial.accountId, plan: 'paid' }),
    )

    await trial.admin.mutation('token.revoke', { id: live.id })
    const moved = await t.operator.mutation('account.setPlan', { accountId: trial.accountId, plan: 'trial' })
    expect(moved.status).toBe(200)
    const sandbox = (await trial.admin.query('token.get', { id: forever.id })).body.result.data
    expect(daysUntil(sandbox.expiresAt)).toBe(15)
    const verified = await t.operator.mutation('token.verify', { token: forever.token })
    expect(verified.body.result.data).toMatchObject({ valid: true, expiresAt: sandbox.expiresAt })
  })

  it('keeps the operator account on paid', async () => {
    const me = (await t.operator.query('me')).body.result.data
    const reply = await t.operator.mutation('account.setPlan', { accountId: me.accountId, plan: 'trial' })
    expect(reply.status).toBe(403)
  })

  it('puts the sessions of trial accounts in the sandbox, and follows the plan', async () => {
    const trial = await trialAccount()
    const person = await newSession(trial.admin, { role: 'admin' })
    const verify = async () => (await t.operator.mutation('token.verify', { token: person.token })).body.result.data
    expect(await verify()).toMatchObject({ valid: true, kind: 'session', environment: 'test' })
    await t.operator.mutation('account.setPlan', { accountId: trial.accountId, plan: 'paid' })
    expect(await verify()).toMatchObject({ valid: true, environment: 'live' })
  })

  it('answers 404 for an unknown account and 400 for an unknown plan', async () => {
    expect((await t.operator.mutation('account.setPlan', { accountId: 'acc_nope', plan: 'paid' })).status).toBe(404)
    const bad = await t.operator.mutation('account.setPlan', { accountId: 'acc_nope', plan: 'gold' })
    expect(bad.status).toBe(400)
    expect(bad.body.error.data.issues.map((issue: { path: string }) => issue.path)).toContain('plan')
  })
})

describe("a credential's environment bounds what it creates", () => {
  /** A paid account, its live admin key, and a test admin key the live one issued. */
  async function paidAccount() {
    const customer = await newAccount(t.operator, 'paid')
    const testKey = await issue(customer.admin, { name: 'sandbox admin', role: 'admin', environment: 'test' })
    return { ...customer, testAdmin: t.operator.as(testKey.token) as Caller, testKeyId: testKey.id }
  }

  async function counts(accountId: string) {
    const [keys, directs, users] = await Promise.all(
      (['access_keys', 'directs', 'users'] as const).map((table) =>
        t.app.deps.db.selectFrom(table).select('id').where('account_id', '=', accountId).execute(),
      ),
    )
    return { keys: keys?.length, directs: directs?.length, users: users?.length }
  }

  function expectRefused(reply: { status: number; body: any }, what: RegExp) {
    expect(reply.status).toBe(403)
    expect(reply.body.error.data.reason).toBe('forbidden')
    expect(reply.body.error.message).toMatch(what)
  }

  it('a test key issues test keys only, even for an account on the paid plan', async () => {
    const paid = await paidAccount()
    const before = await counts(paid.accountId)
    expectRefused(
      await paid.testAdmin.mutation('token.issue', { name: 'prod', environment: 'live' }),
      /test key .* only test/,
    )
    expect(await counts(paid.accountId)).toEqual(before)
    expect((await issue(paid.testAdmin, { name: 'sandbox' })).environment).toBe('test')
    // The bound follows the key wherever it acts: the operator's own test key too.
    const operatorTest = t.operator.as(
      (await issue(t.operator, { name: 'operator sandbox', role: 'admin', environment: 'test' })).token,
    )
    expectRefused(
      await operatorTest.mutation('token.issue', { name: 'prod', environment: 'live', accountId: paid.accountId }),
      /test key/,
    )
    // A live key may create test keys; a paid account's session is live.
    expect((await issue(paid.admin, { name: 'sandbox 2' })).environment).toBe('test')
    const person = await newSession(paid.admin, { role: 'admin' })
    expect((await issue(person.session, { name: 'prod', environment: 'live' })).environment).toBe('live')
  })

  it('a test key cannot rotate a live key (the new one would be live)', async () => {
    const paid = await paidAccount()
    const live = await issue(paid.admin, { name: 'prod', environment: 'live' })
    const before = await counts(paid.accountId)
    expectRefused(await paid.testAdmin.mutation('token.rotate', { id: live.id, oldExpiresIn: 0 }), /test key/)
    expect(await counts(paid.accountId)).toEqual(before)
    expect((await paid.admin.query('token.get', { id: live.id })).body.result.data.expiresAt).toBeNull()
    const sandbox = await issue(paid.admin, { name: 'sandbox' })
    const rotated = await paid.testAdmin.mutation('token.rotate', { id: sandbox.id })
    expect(rotated.status).toBe(200)
    expect(rotated.body.result.data.environment).toBe('test')
  })

  it('a test key creates test direct links only, and test is its default', async () => {
    const paid = await paidAccount()
    const before = await counts(paid.accountId)
    const input = { resourceType: 'ai', resourceId: 'a1' }
    expectRefused(await paid.testAdmin.mutation('direct.create', { ...input, environment: 'live' }), /test key/)
    expect(await counts(paid.accountId)).toEqual(before)
    const created = await paid.testAdmin.mutation('direct.create', input)
    expect(created.status).toBe(200)
    expect(created.body.result.data.environment).toBe('test')
    // A live key still gets the paid plan's default.
    expect((await paid.admin.mutation('direct.create', input)).body.result.data.environment).toBe('live')
  })

  it('a test key cannot create or promote the people of a paid account (they sign in to live)', async () => {
    const paid = await paidAccount()
    const manager = await createUser(paid.admin, { role: 'manager' })
    const before = await counts(paid.accountId)
    const reply = await paid.testAdmin.mutation('user.create', {
      username: 'sneaky',
      email: 'sneaky@example.com',
      password: 'correct horse battery staple',
      role: 'admin',
    })
    expectRefused(reply, /test key/)
    expect(await counts(paid.accountId)).toEqual(before)
    expectRefused(await paid.testAdmin.mutation('user.setRole', { id: manager.id, role: 'admin' }), /test key/)
    // In a trial account people sign in to test: its test keys manage them as before.
    const created = await t.operator.mutation('account.create', { name: 'trial people', plan: 'trial' })
    const accountId = created.body.result.data.id as string
    const trialAdmin = t.operator.as((await issue(t.operator, { name: 'a', role: 'admin', accountId })).token)
    expect((await createUser(trialAdmin, { role: 'admin' })).role).toBe('admin')
  })
})
