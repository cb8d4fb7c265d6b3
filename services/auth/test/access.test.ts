import { generateKey } from '@tokend/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Caller,
  createUser,
  issue,
  newAccount,
  newSession,
  PASSWORD,
  type Reply,
  startTestApp,
  type TestApp,
  uniqueName,
} from './harness.ts'

/**
 * The checks every procedure must pass: no credential, bad credentials, the wrong
 * role, and another account's objects. One table drives them all.
 */
interface Procedure {
  path: string
  kind: 'query' | 'mutation'
  /** A valid input acting on the caller's own account (`own`: a key of that account and an admin of it). */
  input: (own: Own) => unknown
  /** Who may call it: every key, admins, or the operator account. */
  who: 'any' | 'verifier' | 'reader' | 'admin' | 'operator reader' | 'operator admin'
  /** Whether the input names an object (a key) that can belong to another account. */
  targetsKey?: boolean
  /** Only access keys may call it: a session is refused (403) whatever its role. */
  keysOnly?: boolean
}

const procedures: Procedure[] = [
  { path: 'me', kind: 'query', input: () => undefined, who: 'any' },
  { path: 'token.verify', kind: 'mutation', input: (own) => ({ token: own.token }), who: 'verifier' },
  { path: 'token.issue', kind: 'mutation', input: () => ({ name: 'x', environment: 'test' }), who: 'admin' },
  { path: 'token.list', kind: 'query', input: () => ({}), who: 'reader' },
  { path: 'token.get', kind: 'query', input: (own) => ({ id: own.keyId }), who: 'reader', targetsKey: true },
  { path: 'token.revoke', kind: 'mutation', input: (own) => ({ id: own.keyId }), who: 'admin', targetsKey: true },
  {
    path: 'token.setDisabled',
    kind: 'mutation',
    input: (own) => ({ id: own.keyId, disabled: false }),
    who: 'admin',
    targetsKey: true,
  },
  { path: 'token.rotate', kind: 'mutation', input: (own) => ({ id: own.keyId }), who: 'admin', targetsKey: true },
  {
    path: 'token.update',
    kind: 'mutation',
    input: (own) => ({ id: own.keyId, detail: 'checked' }),
    who: 'admin',
    targetsKey: true,
  },
  { path: 'account.create', kind: 'mutation', input: () => ({ name: 'acme' }), who: 'operator admin' },
  { path: 'account.list', kind: 'query', input: () => ({}), who: 'operator reader' },
  { path: 'account.get', kind: 'query', input: () => ({}), who: 'any' },
  { path: 'audit.list', kind: 'query', input: () => ({}), who: 'admin' },
  { path: 'token.exchange', kind: 'mutation', input: () => ({ audience: 'voice-api' }), who: 'any', keysOnly: true },
  { path: 'token.reportLeaked', kind: 'mutation', input: () => ({ tokens: ['not a key'] }), who: 'operator admin' },
  {
    path: 'account.setStatus',
    kind: 'mutation',
    input: () => ({ accountId: customer.accountId, status: 'active' }),
    who: 'operator admin',
  },
  {
    path: 'account.setPlan',
    kind: 'mutation',
    input: () => ({ accountId: customer.accountId, plan: 'paid' }),
    who: 'operator admin',
  },
  {
    path: 'user.create',
    kind: 'mutation',
    input: () => ({ username: uniqueName(), email: 'someone@example.com', password: PASSWORD }),
    who: 'admin',
  },
  { path: 'user.list', kind: 'query', input: () => ({}), who: 'reader' },
  {
    path: 'user.setRole',
    kind: 'mutation',
    input: async (own) => ({ id: (await createUser(own.admin)).id, role: 'admin' }),
    who: 'admin',
  },
  {
    path: 'user.remove',
    kind: 'mutation',
    input: async (own) => ({ id: (await createUser(own.admin)).id }),
    who: 'admin',
  },
  { path: 'direct.create', kind: 'mutation', input: () => ({ resourceType: 'ai', resourceId: 'r1' }), who: 'admin' },
  { path: 'direct.list', kind: 'query', input: () => ({}), who: 'reader' },
  {
    path: 'direct.delete',
    kind: 'mutation',
    input: async (own) => {
      const created = await own.admin.mutation('direct.create', { resourceType: 'ai', resourceId: 'r1' })
      return { id: created.body.result.data.id }
    },
    who: 'admin',
  },
  { path: 'signingKey.list', kind: 'query', input: () => undefined, who: 'operator reader' },
  { path: 'signingKey.rotate', kind: 'mutation', input: () => undefined, who: 'operator admin' },
]

interface Own {
  keyId: string
  token: string
  admin: Caller
}

let t: TestApp
let customer: Awaited<ReturnType<typeof newAccount>>
let manager: Caller
let adminSession: Caller
let managerSession: Caller
let badKeys: Record<string, string>

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp()
  customer = await newAccount(t.operator, 'customer')
  manager = t.operator.as((await issue(customer.admin, { name: 'reader', role: 'manager' })).token)
  adminSession = (await newSession(customer.admin, { role: 'admin' })).session
  managerSession = (await newSession(customer.admin, { role: 'manager' })).session
  const loggedOut = await newSession(customer.admin)
  await loggedOut.session.mutation('auth.logout')
  const revoked = await issue(customer.admin)
  await customer.admin.mutation('token.revoke', { id: revoked.id })
  const disabled = await issue(customer.admin)
  await customer.admin.mutation('token.setDisabled', { id: disabled.id, disabled: true })
  const expired = await issue(customer.admin, { expiresAt: new Date(Date.now() + 200).toISOString() })
  await new Promise((resolve) => setTimeout(resolve, 250))
  const good = await issue(customer.admin)
  badKeys = {
    garbage: 'not-a-key',
    lookalike: `${good.token.slice(0, -1)}${good.token.endsWith('0') ? '1' : '0'}`,
    unknown: generateKey('tk', 'live'),
    'other prefix': generateKey('zz', 'live'),
    revoked: revoked.token,
    disabled: disabled.token,
    expired: expired.token,
    'logged-out session': loggedOut.token,
    'forged session': `${loggedOut.token.split('.').slice(0, 2).join('.')}.${'A'.repeat(86)}`,
  }
})

async function call(caller: Caller, procedure: Procedure, input: unknown): Promise<Reply<any>> {
  const resolved = await input
  return procedure.kind === 'query' ? caller.query(procedure.path, resolved) : caller.mutation(procedure.path, resolved)
}

/** A fresh key of `admin`'s account to act on, so one check never disturbs another. */
async function ownKey(admin: Caller): Promise<Own> {
  const key = await issue(admin, { name: 'target' })
  return { keyId: key.id, token: key.token, admin }
}

describe.each(procedures)('$path', (procedure) => {
  it('answers 401 invalid_token without a credential, with WWW-Authenticate', async () => {
    const reply = await call(t.operator.as(undefined), procedure, procedure.input(await ownKey(customer.admin)))
    expect(reply.status).toBe(401)
    expect(reply.body.error.data.reason).toBe('invalid_token')
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer/)
  })

  it('answers 401 invalid_token for every bad credential', async () => {
    const own = await ownKey(customer.admin)
    for (const [kind, key] of Object.entries(badKeys)) {
      const reply = await call(t.operator.as(key), procedure, procedure.input(own))
      expect({ kind, status: reply.status, reason: reply.body.error?.data.reason }).toEqual({
        kind,
        status: 401,
        reason: 'invalid_token',
      })
    }
  })

  it('answers 401 for a malformed Authorization header', async () => {
    const own = await ownKey(customer.admin)
    const path = `/trpc/${procedure.path}`
    for (const authorization of ['Basic abc', 'Bearer', `Token ${own.token}`]) {
      const reply = await t.operator.as(undefined).send<any>(path, {
        method: procedure.kind === 'query' ? 'GET' : 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        ...(procedure.kind === 'mutation' ? { body: JSON.stringify(await procedure.input(own)) } : {}),
      })
      expect(reply.status).toBe(401)
    }
  })

  const managerDenied = ['admin', 'operator admin', 'verifier'].includes(procedure.who)
  it(`${managerDenied ? 'refuses' : 'allows'} a manager key`, async () => {
    const reply = await call(manager, procedure, procedure.input(await ownKey(customer.admin)))
    if (managerDenied) {
      expect(reply.status).toBe(403)
      expect(reply.body.error.data.reason).toBe('forbidden')
    } else if (procedure.who.startsWith('operator')) {
      expect(reply.status).toBe(403) // not an operator either
    } else {
      expect(reply.status).toBe(200)
    }
  })

  it(`${procedure.who === 'any' || procedure.who === 'reader' || procedure.who === 'admin' ? 'allows' : 'refuses'} a customer admin`, async () => {
    const reply = await call(customer.admin, procedure, procedure.input(await ownKey(customer.admin)))
    const allowed = ['any', 'reader', 'admin'].includes(procedure.who)
    expect(reply.status).toBe(allowed ? 200 : 403)
  })

  // People sign in for the same rights: a session acts exactly as a key of its role does.
  it('treats an admin session like an admin key of its account', async () => {
    const byKey = await call(customer.admin, procedure, procedure.input(await ownKey(customer.admin)))
    const bySession = await call(adminSession, procedure, procedure.input(await ownKey(customer.admin)))
    expect(bySession.status).toBe(procedure.keysOnly ? 403 : byKey.status)
  })

  it('treats a manager session like a manager key', async () => {
    const byKey = await call(manager, procedure, procedure.input(await ownKey(customer.admin)))
    const bySession = await call(managerSession, procedure, procedure.input(await ownKey(customer.admin)))
    expect(bySession.status).toBe(procedure.keysOnly ? 403 : byKey.status)
  })

  it('allows the operator admin', async () => {
    const reply = await call(t.operator, procedure, procedure.input(await ownKey(t.operator)))
    expect(reply.status).toBe(200)
  })

  if (procedure.targetsKey) {
    it("answers 403 forbidden for another account's key, and changes nothing", async () => {
      const other = await newAccount(t.operator, 'other')
      const theirs = await ownKey(other.admin)
      const before = (await other.admin.query('token.get', { id: theirs.keyId })).body.result.data
      const reply = await call(customer.admin, procedure, procedure.input(theirs))
      expect(reply.status).toBe(403)
      expect(reply.body.error.data.reason).toBe('forbidden')
      const after = (await other.admin.query('token.get', { id: theirs.keyId })).body.result.data
      expect(after).toEqual(before)
    })
  }
})

describe('acting on other accounts', () => {
  it('refuses accountId of another account to a non-operator', async () => {
    const other = await newAccount(t.operator, 'other2')
    const issueReply = await customer.admin.mutation('token.issue', {
      name: 'x',
      environment: 'test',
      accountId: other.accountId,
    })
    expect(issueReply.status).toBe(403)
    const list = await customer.admin.query('token.list', { accountId: other.accountId })
    expect(list.status).toBe(403)
  })

  it('lets the operator issue into another account', async () => {
    const key = await issue(t.operator, { accountId: customer.accountId })
    expect(key.accountId).toBe(customer.accountId)
  })

  it('answers 404 when the operator names an account that does not exist', async () => {
    const reply = await t.operator.mutation('token.issue', { name: 'x', environment: 'test', accountId: 'acc_nope' })
    expect(reply.status).toBe(404)
    expect(reply.body.error.data.reason).toBe('not_found')
  })

  it('never grants a reserved scope the issuer lacks, nor a role above its own', async () => {
    const scoped = await customer.admin.mutation('token.issue', {
      name: 'x',
      environment: 'test',
      scopes: ['tokend:verify'],
    })
    expect(scoped.status).toBe(403)
    const unknown = await t.operator.mutation('token.issue', {
      name: 'x',
      environment: 'test',
      scopes: ['tokend:root'],
    })
    expect(unknown.status).toBe(400)
    const granted = await t.operator.mutation('token.issue', {
      name: 'verifier',
      environment: 'live',
      scopes: ['tokend:verify'],
      accountId: customer.accountId,
    })
    expect(granted.status).toBe(200)
  })

  it('refuses token.verify to a key without tokend:verify', async () => {
    const reply = await customer.admin.mutation('token.verify', { token: customer.adminKey.token })
    expect(reply.status).toBe(403)
    expect(reply.body.error.data.reason).toBe('forbidden')
  })
})
