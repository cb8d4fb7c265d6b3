import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, startTestApp, type TestApp } from './harness.ts'

let t: TestApp
let keyId: string

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp({ TOKEND_SIGNUP: 'open' })
  keyId = (await issue(t.operator)).id
})

/** Rows in every table: a bad call must leave them all unchanged. */
async function snapshot() {
  const db = t.app.deps.db
  const { rows } = await sql<{ table: string; count: number }>`
    select 'accounts' as table, count(*)::int as count from accounts
    union all select 'access_keys', count(*)::int from access_keys
    union all select 'audit_events', count(*)::int from audit_events
    union all select 'changed_keys', count(*)::int from access_keys where revoked_at is not null or disabled
    union all select 'users', count(*)::int from users
    union all select 'sessions', count(*)::int from sessions
    union all select 'revoked_sessions', count(*)::int from sessions where revoked_at is not null
    union all select 'directs', count(*)::int from directs
    union all select 'signing_keys', count(*)::int from signing_keys
    union all select 'throttle', coalesce(sum(attempts), 0)::int from login_throttle
    union all select 'plans', count(*)::int from accounts where plan = 'paid'
  `.execute(db)
  return rows
}

const long = 'x'.repeat(5_000)
const past = new Date(Date.now() - 60_000).toISOString()

const cases: Array<[string, 'query' | 'mutation', string, unknown, string?]> = [
  ['issue: no input', 'mutation', 'token.issue', undefined],
  ['issue: wrong types', 'mutation', 'token.issue', { name: 42, environment: true }, 'name'],
  ['issue: unknown field', 'mutation', 'token.issue', { name: 'x', environment: 'test', admin: true }],
  ['issue: unknown environment', 'mutation', 'token.issue', { name: 'x', environment: 'prod' }, 'environment'],
  ['issue: empty name', 'mutation', 'token.issue', { name: '   ', environment: 'test' }, 'name'],
  ['issue: oversized name', 'mutation', 'token.issue', { name: long, environment: 'test' }, 'name'],
  ['issue: oversized detail', 'mutation', 'token.issue', { name: 'x', detail: long, environment: 'test' }, 'detail'],
  ['issue: bad role', 'mutation', 'token.issue', { name: 'x', environment: 'test', role: 'owner' }, 'role'],
  [
    'issue: bad scope',
    'mutation',
    'token.issue',
    { name: 'x', environment: 'test', scopes: ['Bad Scope'] },
    'scopes.0',
  ],
  [
    'issue: too many scopes',
    'mutation',
    'token.issue',
    { name: 'x', environment: 'test', scopes: Array.from({ length: 51 }, (_, i) => `s${i}:read`) },
    'scopes',
  ],
  ['issue: scopes not a list', 'mutation', 'token.issue', { name: 'x', environment: 'test', scopes: 'a:b' }, 'scopes'],
  [
    'issue: past expiresAt',
    'mutation',
    'token.issue',
    { name: 'x', environment: 'test', expiresAt: past },
    'expiresAt',
  ],
  [
    'issue: invalid expiresAt',
    'mutation',
    'token.issue',
    { name: 'x', environment: 'test', expiresAt: '2030-02-31T25:00:00Z' },
    'expiresAt',
  ],
  [
    'issue: far-future expiresAt',
    'mutation',
    'token.issue',
    { name: 'x', environment: 'test', expiresAt: '9999-01-01T00:00:00Z' },
    'expiresAt',
  ],
  ['issue: bad preset', 'mutation', 'token.issue', { name: 'x', environment: 'test', expiresIn: '2d' }, 'expiresIn'],
  [
    'issue: both expiries',
    'mutation',
    'token.issue',
    { name: 'x', environment: 'test', expiresIn: '30d', expiresAt: new Date(Date.now() + 86_400_000).toISOString() },
    'expiresAt',
  ],
  ['verify: no token', 'mutation', 'token.verify', {}, 'token'],
  ['verify: token not a string', 'mutation', 'token.verify', { token: 123 }, 'token'],
  ['verify: oversized token', 'mutation', 'token.verify', { token: long }, 'token'],
  ['verify: bad requirement', 'mutation', 'token.verify', { token: 'x', require: { environment: 'prod' } }],
  ['verify: unknown requirement', 'mutation', 'token.verify', { token: 'x', require: { ip: '1.2.3.4' } }],
  ['list: bad status', 'query', 'token.list', { status: 'gone' }, 'status'],
  ['list: limit too big', 'query', 'token.list', { limit: 1_000 }, 'limit'],
  ['list: limit not a number', 'query', 'token.list', { limit: 'ten' }, 'limit'],
  ['get: no id', 'query', 'token.get', {}, 'id'],
  ['get: oversized id', 'query', 'token.get', { id: long }, 'id'],
  ['revoke: id not a string', 'mutation', 'token.revoke', { id: ['tok_1'] }, 'id'],
  ['setDisabled: no flag', 'mutation', 'token.setDisabled', { id: 'tok_1' }, 'disabled'],
  ['setDisabled: flag a string', 'mutation', 'token.setDisabled', { id: 'tok_1', disabled: 'yes' }, 'disabled'],
  ['rotate: negative oldExpiresIn', 'mutation', 'token.rotate', { id: 'tok_1', oldExpiresIn: -5 }, 'oldExpiresIn'],
  ['rotate: fractional oldExpiresIn', 'mutation', 'token.rotate', { id: 'tok_1', oldExpiresIn: 1.5 }, 'oldExpiresIn'],
  ['account.create: no name', 'mutation', 'account.create', {}, 'name'],
  ['account.create: bad plan', 'mutation', 'account.create', { name: 'a', plan: 'gold' }, 'plan'],
  ['account.setPlan: no plan', 'mutation', 'account.setPlan', { accountId: 'acc_1' }, 'plan'],
  ['signup: no input', 'mutation', 'auth.signup', undefined],
  ['signup: short password', 'mutation', 'auth.signup', signup({ password: 'short' }), 'password'],
  ['signup: oversized password', 'mutation', 'auth.signup', signup({ password: long }), 'password'],
  ['signup: password not a string', 'mutation', 'auth.signup', signup({ password: 12 }), 'password'],
  ['signup: bad email', 'mutation', 'auth.signup', signup({ email: 'nope' }), 'email'],
  ['signup: oversized username', 'mutation', 'auth.signup', signup({ username: long }), 'username'],
  ['signup: unknown field', 'mutation', 'auth.signup', signup({ plan: 'paid' })],
  ['login: no input', 'mutation', 'auth.login', undefined],
  ['login: no password', 'mutation', 'auth.login', { username: 'someone' }, 'password'],
  ['login: empty username', 'mutation', 'auth.login', { username: '', password: 'x' }, 'username'],
  ['login: oversized password', 'mutation', 'auth.login', { username: 'someone', password: long }, 'password'],
  ['login: oversized username', 'mutation', 'auth.login', { username: long, password: 'x' }, 'username'],
  ['login: password not a string', 'mutation', 'auth.login', { username: 'someone', password: ['x'] }, 'password'],
  ['boot: hash not a string', 'mutation', 'auth.boot', { directHash: {} }, 'directHash'],
  ['boot: oversized hash', 'mutation', 'auth.boot', { directHash: `direct.${long}` }, 'directHash'],
  ['user.create: no password', 'mutation', 'user.create', { username: 'someone', email: 'a@b.test' }, 'password'],
  ['user.create: bad role', 'mutation', 'user.create', signupUser({ role: 'owner' }), 'role'],
  ['user.create: weak password', 'mutation', 'user.create', signupUser({ password: 'aaaaaaaaaaaaaaaa' }), 'password'],
  ['user.setRole: bad role', 'mutation', 'user.setRole', { id: 'usr_1', role: 'root' }, 'role'],
  ['user.remove: no id', 'mutation', 'user.remove', {}, 'id'],
  ['user.list: limit too big', 'query', 'user.list', { limit: 1_000 }, 'limit'],
  ['direct.create: no resource', 'mutation', 'direct.create', {}, 'resourceType'],
  ['direct.create: colon in id', 'mutation', 'direct.create', { resourceType: 'ai', resourceId: 'a:b' }, 'resourceId'],
  ['direct.create: bad type', 'mutation', 'direct.create', { resourceType: 'AI!', resourceId: 'x' }, 'resourceType'],
  [
    'direct.create: bad environment',
    'mutation',
    'direct.create',
    { resourceType: 'ai', resourceId: 'x', environment: 'prod' },
    'environment',
  ],
  ['direct.delete: id not a string', 'mutation', 'direct.delete', { id: 5 }, 'id'],
]

function signup(overrides: Record<string, unknown>) {
  return {
    accountName: 'acme',
    username: 'founder',
    email: 'founder@acme.test',
    password: 'a fine long password',
    ...overrides,
  }
}

function signupUser(overrides: Record<string, unknown>) {
  return { username: 'someone', email: 'someone@acme.test', password: 'a fine long password', ...overrides }
}

describe('bad input', () => {
  it.each(cases)(
    '%s → 400 invalid_input with the field issues, nothing written',
    async (_name, kind, path, input, field) => {
      const before = await snapshot()
      const reply = kind === 'query' ? await t.operator.query(path, input) : await t.operator.mutation(path, input)
      expect(reply.status).toBe(400)
      expect(reply.body.error.data.reason).toBe('invalid_input')
      expect(reply.body.error.data.issues?.length ?? 0).toBeGreaterThan(0)
      if (field) expect(reply.body.error.data.issues.map((issue: { path: string }) => issue.path)).toContain(field)
      expect(JSON.stringify(reply.body)).not.toMatch(/stack|at \w+ \(|node_modules/)
      expect(await snapshot()).toEqual(before)
    },
  )

  it('answers 400 for a body that is not JSON', async () => {
    const reply = await t.operator.send<any>('/trpc/token.issue', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": "x",',
    })
    expect(reply.status).toBe(400)
    expect(reply.body.error.data.reason).toBe('invalid_input')
  })

  it('answers 400 for a query input that is not JSON', async () => {
    const reply = await t.operator.send<any>('/trpc/token.list?input=%7Bnope', { method: 'GET' })
    expect(reply.status).toBe(400)
    expect(reply.body.error.data.reason).toBe('invalid_input')
  })

  it('answers 413 for a body over 1 MiB, without reading it all', async () => {
    const reply = await t.operator.send<any>('/trpc/token.verify', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'x'.repeat(2 * 1024 * 1024) }),
    })
    expect(reply.status).toBe(413)
    expect(reply.body.error.data.reason).toBe('invalid_input')
  })

  it('answers 404 not_found for an unknown procedure and 405 for a query sent as a mutation', async () => {
    const unknown = await t.operator.mutation('token.nope', {})
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.data.reason).toBe('not_found')
    const wrongMethod = await t.operator.send<any>(
      `/trpc/token.revoke?input=${encodeURIComponent(JSON.stringify({ id: keyId }))}`,
      {
        method: 'GET',
      },
    )
    expect(wrongMethod.status).toBe(405)
    expect((await t.operator.query('token.get', { id: keyId })).body.result.data.status).toBe('active')
  })

  it('answers JSON 404 outside /trpc', async () => {
    const reply = await t.operator.send<any>('/nope', { method: 'GET' })
    expect(reply.status).toBe(404)
    expect(reply.body.error.code).toBe('not_found')
  })

  it('keeps a batch of good and bad calls apart', async () => {
    const reply = await t.operator.send<any>('/trpc/token.get,token.get?batch=1', {
      method: 'GET',
      headers: {},
    })
    // Without input both fail validation; the batch still answers each call.
    expect(reply.status).toBe(400)
    expect(reply.body).toHaveLength(2)
    const batch = await t.operator.send<any>(
      `/trpc/token.get,token.get?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: { id: keyId }, 1: { id: 7 } }))}`,
      { method: 'GET' },
    )
    expect(batch.status).toBe(207)
    expect(batch.body[0].result.data.id).toBe(keyId)
    expect(batch.body[1].error.data.reason).toBe('invalid_input')
  })
})
