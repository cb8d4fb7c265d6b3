import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Caller,
  createUser,
  issue,
  login,
  newAccount,
  newSession,
  PASSWORD,
  startTestApp,
  type TestApp,
  uniqueName,
} from './harness.ts'

let t: TestApp
let customer: Awaited<ReturnType<typeof newAccount>>

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp({ TOKEND_SIGNUP: 'open', TOKEND_LOGIN_MAX_PER_ADDRESS: '100000' })
  customer = await newAccount(t.operator, 'people')
})

const anonymous = () => t.operator.as(undefined)

async function verify(token: string, require?: unknown) {
  const reply = await t.operator.mutation('token.verify', { token, require })
  expect(reply.status).toBe(200)
  return reply.body.result.data
}

function signupInput(overrides: Record<string, unknown> = {}) {
  const username = uniqueName('founder')
  return { accountName: 'Acme Voice', username, email: `${username}@acme.test`, password: PASSWORD, ...overrides }
}

async function audit(action: string) {
  return t.app.deps.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('id').execute()
}

describe('auth.signup', () => {
  it('creates a trial account, its admin user and a trial test key returned once', async () => {
    const input = signupInput()
    const reply = await anonymous().mutation('auth.signup', input)
    expect(reply.status).toBe(200)
    const { account, user, accessKey } = reply.body.result.data
    expect(account).toMatchObject({ name: 'Acme Voice', plan: 'trial', status: 'active', operator: false })
    expect(user).toMatchObject({ accountId: account.id, username: input.username, email: input.email, role: 'admin' })
    expect(JSON.stringify(user)).not.toContain('argon2')
    expect(accessKey).toMatchObject({ accountId: account.id, environment: 'test', role: 'admin' })
    expect(accessKey.token).toMatch(/^tk_test_/)
    // The trial key expires per the plan: 30 days by default.
    const days = (Date.parse(accessKey.expiresAt) - Date.parse(accessKey.createdAt)) / 86_400_000
    expect(Math.round(days)).toBe(30)
    expect(await verify(accessKey.token)).toMatchObject({ valid: true, accountId: account.id, environment: 'test' })

    // The new admin can sign in and manage the account.
    const { token } = await login(t.operator, input.username)
    const me = (await t.operator.as(token).query('me')).body.result.data
    expect(me).toMatchObject({ kind: 'session', userId: user.id, accountId: account.id, role: 'admin' })
    const events = (await audit('auth.signup')).filter((event) => event.account_id === account.id)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ actor_type: 'user', actor_id: user.id, target_id: account.id })
    expect(JSON.stringify(events)).not.toContain(PASSWORD)
  })

  it('answers 409 username_taken for a username in use, and writes nothing', async () => {
    const input = signupInput()
    expect((await anonymous().mutation('auth.signup', input)).status).toBe(200)
    const accountsBefore = await t.app.deps.db.selectFrom('accounts').select('id').execute()
    const again = await anonymous().mutation('auth.signup', {
      ...input,
      accountName: 'Other',
      username: input.username,
    })
    expect(again.status).toBe(409)
    expect(again.body.error.data.reason).toBe('username_taken')
    expect(await t.app.deps.db.selectFrom('accounts').select('id').execute()).toHaveLength(accountsBefore.length)
  })

  it('takes usernames case-insensitively', async () => {
    const input = signupInput()
    expect((await anonymous().mutation('auth.signup', input)).status).toBe(200)
    const shouted = await anonymous().mutation('auth.signup', signupInput({ username: input.username.toUpperCase() }))
    expect(shouted.status).toBe(409)
    expect((await login(t.operator, input.username.toUpperCase())).username).toBe(input.username)
  })

  it.each([
    ['a short password', { password: 'short' }, 'password'],
    ['an oversized password', { password: 'x'.repeat(257) }, 'password'],
    ['a password that is the username', { username: 'samesame12345', password: 'samesame12345' }, 'password'],
    ['a one-character password', { password: 'a'.repeat(20) }, 'password'],
    ['a bad email', { email: 'not-an-email' }, 'email'],
    ['a bad username', { username: 'no spaces allowed' }, 'username'],
    ['an empty account name', { accountName: '  ' }, 'accountName'],
  ])('refuses %s with 400 and the field', async (_name, overrides, field) => {
    const reply = await anonymous().mutation('auth.signup', signupInput(overrides))
    expect(reply.status).toBe(400)
    expect(reply.body.error.data.reason).toBe('invalid_input')
    expect(reply.body.error.data.issues.map((issue: { path: string }) => issue.path)).toContain(field)
  })

  it('answers 403 when sign-up is closed (the default)', async () => {
    const closed = await startTestApp()
    try {
      const reply = await closed.operator.as(undefined).mutation('auth.signup', signupInput())
      expect(reply.status).toBe(403)
      expect(reply.body.error.data.reason).toBe('forbidden')
      expect(reply.body.error.message).toMatch(/sign-up is closed/)
      expect(await closed.app.deps.db.selectFrom('users').select('id').execute()).toHaveLength(0)
    } finally {
      await closed.stop()
    }
  })
})

describe('users', () => {
  it('creates, lists, changes the role of and removes users; managers may only list', async () => {
    const manager = await newSession(customer.admin, { role: 'manager' })
    await createUser(customer.admin, { role: 'admin' }) // so the promoted user is not the last admin
    const created = await createUser(customer.admin, { role: 'manager' })
    expect(created).toMatchObject({ accountId: customer.accountId, role: 'manager' })

    const listed = await manager.session.query('user.list', {})
    expect(listed.status).toBe(200)
    expect(listed.body.result.data.items.map((user: { id: string }) => user.id)).toContain(created.id)
    expect(JSON.stringify(listed.body)).not.toMatch(/argon2|password/)

    for (const [path, input] of [
      ['user.create', { username: uniqueName(), email: 'a@b.test', password: PASSWORD }],
      ['user.setRole', { id: created.id, role: 'admin' }],
      ['user.remove', { id: created.id }],
    ] as const) {
      const reply = await manager.session.mutation(path, input)
      expect({ path, status: reply.status }).toEqual({ path, status: 403 })
    }

    const promoted = await customer.admin.mutation('user.setRole', { id: created.id, role: 'admin' })
    expect(promoted.body.result.data.role).toBe('admin')
    const removed = await customer.admin.mutation('user.remove', { id: created.id })
    expect(removed.body.result.data).toMatchObject({ id: created.id, removedAt: expect.any(String) })
    const after = await customer.admin.query('user.list', {})
    expect(after.body.result.data.items.map((user: { id: string }) => user.id)).not.toContain(created.id)
    expect((await customer.admin.mutation('user.remove', { id: created.id })).status).toBe(404)

    const actions = (
      await t.app.deps.db.selectFrom('audit_events').selectAll().where('target_id', '=', created.id).execute()
    )
      .map((event) => event.action)
      .sort()
    expect(actions).toEqual(['user.create', 'user.remove', 'user.set_role'])
  })

  it('keeps at least one admin user in an account', async () => {
    const account = await newAccount(t.operator, 'lonely')
    const only = await createUser(account.admin, { role: 'admin' })
    const demote = await account.admin.mutation('user.setRole', { id: only.id, role: 'manager' })
    expect(demote.status).toBe(409)
    expect(demote.body.error.message).toMatch(/at least one admin/)
    expect((await account.admin.mutation('user.remove', { id: only.id })).status).toBe(409)
    const second = await createUser(account.admin, { role: 'admin' })
    expect((await account.admin.mutation('user.remove', { id: only.id })).status).toBe(200)
    expect((await account.admin.mutation('user.setRole', { id: second.id, role: 'manager' })).status).toBe(409)
  })

  it("refuses another account's users with 403, and lets the operator act on them", async () => {
    const other = await newAccount(t.operator, 'other-people')
    const theirs = await createUser(other.admin)
    const spy = await customer.admin.mutation('user.setRole', { id: theirs.id, role: 'admin' })
    expect(spy.status).toBe(403)
    expect((await customer.admin.mutation('user.remove', { id: theirs.id })).status).toBe(403)
    expect((await customer.admin.query('user.list', { accountId: other.accountId })).status).toBe(403)
    const created = await customer.admin.mutation('user.create', {
      username: uniqueName(),
      email: 'x@y.test',
      password: PASSWORD,
      accountId: other.accountId,
    })
    expect(created.status).toBe(403)
    expect((await other.admin.query('user.list', {})).body.result.data.items).toHaveLength(1)

    const byOperator = await createUser(t.operator, { accountId: other.accountId })
    expect(byOperator.accountId).toBe(other.accountId)
    expect((await t.operator.mutation('user.remove', { id: byOperator.id })).status).toBe(200)
  })

  it('stores an argon2id hash at OWASP parameters or stronger, never the password', async () => {
    const user = await createUser(customer.admin)
    const row = await t.app.deps.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', user.id)
      .executeTakeFirstOrThrow()
    const [, type, version, params] = row.password_hash.split('$')
    expect([type, version]).toEqual(['argon2id', 'v=19'])
    const {
      m,
      t: timeCost,
      p,
    } = Object.fromEntries((params ?? '').split(',').map((pair) => [pair.split('=')[0], Number(pair.split('=')[1])]))
    expect(m).toBeGreaterThanOrEqual(19_456)
    expect(timeCost).toBeGreaterThanOrEqual(2)
    expect(p).toBe(1)
    expect(row.password_hash).not.toContain(PASSWORD)
  })
})

describe('auth.login and auth.logout', () => {
  it('returns a 7-day session JWT that verifies as kind session', async () => {
    const user = await createUser(customer.admin, { role: 'manager' })
    const before = Date.now()
    const reply = await anonymous().mutation('auth.login', { username: user.username, password: PASSWORD })
    expect(reply.status).toBe(200)
    const { username, token, expiresAt } = reply.body.result.data
    expect(username).toBe(user.username)
    expect(token).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
    const lifetime = Date.parse(expiresAt) - before
    expect(Math.abs(lifetime - 7 * 86_400_000)).toBeLessThan(60_000)
    expect(await verify(token)).toEqual({
      valid: true,
      kind: 'session',
      tokenId: expect.stringMatching(/^ses_/),
      userId: user.id,
      accountId: customer.accountId,
      environment: 'live',
      role: 'manager',
      scopes: [],
      name: user.username,
      expiresAt,
    })
    // Requirements apply to sessions too: they hold no scopes.
    expect(await verify(token, { scopes: ['recordings:read'] })).toMatchObject({ reason: 'INSUFFICIENT_SCOPE' })
    expect(await verify(token, { role: 'admin' })).toMatchObject({ reason: 'INSUFFICIENT_SCOPE' })
    expect(await verify(token, { environment: 'test' })).toMatchObject({ reason: 'WRONG_ENVIRONMENT' })
    const events = (await audit('auth.login')).filter((event) => event.actor_id === user.id)
    expect(events).toHaveLength(1)
  })

  it('answers an unknown user and a wrong password alike, and audits both without the password', async () => {
    const user = await createUser(customer.admin)
    const wrong = await anonymous().mutation('auth.login', { username: user.username, password: 'wrong password 123' })
    const ghost = uniqueName('ghost')
    const unknown = await anonymous().mutation('auth.login', { username: ghost, password: 'wrong password 123' })
    expect(wrong.status).toBe(401)
    expect(unknown.status).toBe(401)
    expect(wrong.body).toEqual(unknown.body)
    expect(wrong.body.error.data.reason).toBe('invalid_credentials')
    expect(wrong.body.error.message).toBe('unknown username or wrong password')

    const failures = await audit('auth.login_failed')
    const forUser = failures.find((event) => event.target_id === user.id)
    const forGhost = failures.find((event) => (event.data as { username?: string }).username === ghost)
    expect(forUser).toMatchObject({ account_id: customer.accountId, actor_type: 'anonymous' })
    expect(forGhost).toMatchObject({ account_id: null, target_id: null, actor_type: 'anonymous' })
    expect(await t.app.deps.db.selectFrom('accounts').select('id').where('id', '=', ghost).execute()).toHaveLength(0)
    expect(JSON.stringify(failures)).not.toContain('wrong password 123')
    expect(t.logs.join('')).not.toContain('wrong password 123')
    expect(t.logs.join('')).not.toContain(PASSWORD)
  })

  it('makes a session a bearer credential for management procedures, with its role', async () => {
    const admin = await newSession(customer.admin, { role: 'admin' })
    const manager = await newSession(customer.admin, { role: 'manager' })
    const issued = await admin.session.mutation('token.issue', { name: 'from a session', environment: 'test' })
    expect(issued.status).toBe(200)
    const key = await t.app.deps.db
      .selectFrom('access_keys')
      .select('created_by')
      .where('id', '=', issued.body.result.data.id)
      .executeTakeFirstOrThrow()
    expect(key.created_by).toBe(admin.user.id)
    expect((await manager.session.query('token.list', {})).status).toBe(200)
    expect((await manager.session.mutation('token.issue', { name: 'x', environment: 'test' })).status).toBe(403)
    // Sessions hold no tokend:* scope: neither verify nor grant it.
    expect((await admin.session.mutation('token.verify', { token: 'x' })).status).toBe(403)
    const grant = await admin.session.mutation('token.issue', {
      name: 'x',
      environment: 'test',
      scopes: ['tokend:verify'],
    })
    expect(grant.status).toBe(403)
    const event = await t.app.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('target_id', '=', issued.body.result.data.id)
      .executeTakeFirstOrThrow()
    expect(event).toMatchObject({ actor_type: 'user', actor_id: admin.user.id })
  })

  it('follows a role change at once', async () => {
    const person = await newSession(customer.admin, { role: 'manager' })
    expect((await person.session.mutation('token.issue', { name: 'x', environment: 'test' })).status).toBe(403)
    await customer.admin.mutation('user.setRole', { id: person.user.id, role: 'admin' })
    expect((await person.session.mutation('token.issue', { name: 'x', environment: 'test' })).status).toBe(200)
    expect(await verify(person.token)).toMatchObject({ valid: true, role: 'admin' })
  })

  it('logs out: the session is rejected at once, other sessions of the user stay', async () => {
    const person = await newSession(customer.admin)
    const second = await login(t.operator, person.user.username)
    expect(await verify(person.token)).toMatchObject({ valid: true })
    const reply = await person.session.mutation('auth.logout')
    expect(reply.status).toBe(200)
    expect(reply.body.result.data).toMatchObject({
      sessionId: expect.stringMatching(/^ses_/),
      revokedAt: expect.any(String),
    })
    expect(await verify(person.token)).toEqual({ valid: false, reason: 'REVOKED' })
    expect((await person.session.query('me')).status).toBe(401)
    expect(await verify(second.token)).toMatchObject({ valid: true })
    expect((await audit('auth.logout')).some((event) => event.actor_id === person.user.id)).toBe(true)
  })

  it('answers 403 to logout with an access key', async () => {
    const reply = await customer.admin.mutation('auth.logout')
    expect(reply.status).toBe(403)
    expect(reply.body.error.message).toMatch(/session token/)
  })

  it('rejects the sessions of a removed user', async () => {
    const person = await newSession(customer.admin)
    expect(await verify(person.token)).toMatchObject({ valid: true })
    await customer.admin.mutation('user.remove', { id: person.user.id })
    expect(await verify(person.token)).toEqual({ valid: false, reason: 'REVOKED' })
    expect((await person.session.query('me')).status).toBe(401)
    const again = await anonymous().mutation('auth.login', { username: person.user.username, password: PASSWORD })
    expect(again.status).toBe(401)
  })

  it("rejects a suspended account's sessions and keys, refuses its sign-ins, and restores them on reactivation", async () => {
    const account = await newAccount(t.operator, 'suspended-people')
    const person = await newSession(account.admin)
    const key = await issue(account.admin)
    expect(await verify(person.token)).toMatchObject({ valid: true })
    expect(await verify(key.token)).toMatchObject({ valid: true })
    await t.operator.mutation('account.setStatus', { accountId: account.accountId, status: 'suspended' })
    expect(await verify(person.token)).toEqual({ valid: false, reason: 'ACCOUNT_SUSPENDED' })
    expect(await verify(key.token)).toEqual({ valid: false, reason: 'ACCOUNT_SUSPENDED' })
    expect((await person.session.query('me')).status).toBe(401)
    const refused = await anonymous().mutation('auth.login', { username: person.user.username, password: PASSWORD })
    expect(refused.status).toBe(403)
    expect(refused.body.error.message).toMatch(/suspended/)
    await t.operator.mutation('account.setStatus', { accountId: account.accountId, status: 'active' })
    expect(await verify(person.token)).toMatchObject({ valid: true })
  })
})

describe('login throttling', () => {
  let throttled: TestApp
  let admin: Caller
  beforeAll(async () => {
    throttled = await startTestApp({
      TOKEND_LOGIN_MAX_PER_PAIR: '3',
      TOKEND_LOGIN_MAX_PER_USERNAME: '6',
      TOKEND_LOGIN_MAX_PER_ADDRESS: '8',
      // The tests below stand for many clients by forwarded addresses, as from behind a proxy.
      TOKEND_TRUST_PROXY: 'loopback',
    })
    admin = (await newAccount(throttled.operator, 'throttled')).admin
  })
  afterAll(() => throttled?.stop())

  it('answers 429 rate_limited with Retry-After per username and address, then per address, before checking the password', async () => {
    const user = await createUser(admin)
    const attempt = (username: string, password = 'wrong password 123') =>
      throttled.operator.as(undefined).mutation('auth.login', { username, password })
    for (let i = 0; i < 3; i++) expect((await attempt(user.username)).status).toBe(401)
    const blocked = await attempt(user.username, PASSWORD) // even the right password
    expect(blocked.status).toBe(429)
    expect(blocked.body.error.data.reason).toBe('rate_limited')
    const retryAfter = Number(blocked.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(0)
    expect(retryAfter).toBeLessThanOrEqual(900)
    expect(blocked.body.error.data.retryAfterMs).toBeGreaterThan(0)

    // Another username from the same address still works, until the address's own limit.
    const other = await createUser(admin)
    expect((await attempt(other.username, PASSWORD)).status).toBe(200)
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await attempt(uniqueName('spray'))).status)
    expect(statuses.at(-1)).toBe(429)
    expect(statuses).toContain(401)
  })

  /** A login attempt from `address` (X-Forwarded-For, believed from loopback here). */
  function attemptFrom(address: string, username: string, password = 'wrong password 123') {
    return throttled.operator.as(undefined).send<any>('/trpc/auth.login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify({ username, password }),
    })
  }

  it("does not let a stranger lock a user out: the user's own address still signs in", async () => {
    const user = await createUser(admin)
    for (let i = 0; i < 3; i++) expect((await attemptFrom('198.51.100.7', user.username)).status).toBe(401)
    // The stranger keeps going; refused attempts count against nobody else.
    for (let i = 0; i < 10; i++) expect((await attemptFrom('198.51.100.7', user.username)).status).toBe(429)
    expect((await attemptFrom('203.0.113.20', user.username, PASSWORD)).status).toBe(200)
    expect((await attemptFrom('198.51.100.7', user.username, PASSWORD)).status).toBe(429)
  })

  it('caps the attempts on one username from every address together (a spread-out guesser)', async () => {
    const user = await createUser(admin)
    const statuses: number[] = []
    for (let i = 1; i <= 8; i++) statuses.push((await attemptFrom(`192.0.2.${i}`, user.username)).status)
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429, 429])
    // At the ceiling even the right password from a fresh address waits for the window.
    const blocked = await attemptFrom('192.0.2.100', user.username, PASSWORD)
    expect(blocked.status).toBe(429)
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
  })
})
