import { spawn } from 'node:child_process'
import { lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freshDatabase } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Caller, createUser, issue, login, newAccount, startTestApp, type TestApp } from './harness.ts'

const serviceDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsx = join(serviceDir, 'node_modules/.bin/tsx')
const ALL = ['tokend:verify', 'tokend:scanner']

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokend-operator-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** What the operator account holds in `database`, straight from Postgres. */
async function operatorRows(app: TestApp) {
  const db = app.app.deps.db
  const accounts = await db.selectFrom('accounts').select('id').where('operator', '=', true).execute()
  const keys = await db
    .selectFrom('access_keys')
    .innerJoin('accounts', 'accounts.id', 'access_keys.account_id')
    .select('access_keys.id')
    .where('accounts.operator', '=', true)
    .execute()
  return { accounts: accounts.length, keys: keys.length }
}

describe('bootstrap hands the key over atomically (TOKEND_BOOTSTRAP_TOKEN_FILE)', () => {
  /**
   * Starts on `database` expecting start-up to fail; returns the error message. A
   * second, good start on the same database must then bootstrap as if nothing happened.
   */
  async function failedStart(database: { url: string }, file: string): Promise<string> {
    const error = await startTestApp({ TOKEND_BOOTSTRAP_TOKEN_FILE: file }, database).then(
      () => new Error('started'),
      (failure: Error) => failure,
    )
    return error.message
  }

  async function bootstrapsAfterwards(database: { url: string }): Promise<void> {
    const file = join(dir, `good-${Date.now()}.key`)
    const app = await startTestApp({ TOKEND_BOOTSTRAP_TOKEN_FILE: file }, database)
    try {
      expect(app.bootstrapKey).toMatch(/^tk_live_/)
      expect(await readFile(file, 'utf8')).toBe(`${app.bootstrapKey}\n`)
      expect((await stat(file)).mode & 0o777).toBe(0o600)
      expect((await app.operator.query('me')).body.result.data).toMatchObject({ operator: true, role: 'admin' })
      expect(await operatorRows(app)).toEqual({ accounts: 1, keys: 1 })
    } finally {
      await app.stop()
    }
  }

  it('commits nothing when the directory is missing, and bootstraps on the next start', async () => {
    const database = await freshDatabase()
    try {
      const message = await failedStart(database, join(dir, 'missing', 'bootstrap.key'))
      expect(message).toMatch(/cannot write the key to .*missing\/bootstrap.key: its directory does not exist/)
      expect(message).toMatch(/nothing was created/)
      await bootstrapsAfterwards(database)
    } finally {
      await database.drop()
    }
  })

  it('never writes through a symbolic link, nor over an existing file', async () => {
    const database = await freshDatabase()
    try {
      const target = join(dir, 'elsewhere.key')
      const link = join(dir, 'link.key')
      await symlink(target, link)
      expect(await failedStart(database, link)).toMatch(/cannot write the key to .*link.key: it already exists/)
      await expect(lstat(target)).rejects.toThrow(/ENOENT/) // the link's target was not created

      const existing = join(dir, 'existing.key')
      await writeFile(existing, 'an older key\n', { mode: 0o644 })
      expect(await failedStart(database, existing)).toMatch(/already exists/)
      expect(await readFile(existing, 'utf8')).toBe('an older key\n')

      await bootstrapsAfterwards(database)
    } finally {
      await database.drop()
    }
  })
})

describe('the operator cannot lock itself out', () => {
  let t: TestApp
  /** The operator's current admin key: the tests below hand it on as they retire keys. */
  let operator: Caller
  beforeAll(async () => {
    t = await startTestApp()
    operator = t.operator
  })
  afterAll(() => t?.stop())

  function expectConflict(reply: { status: number; body: any }) {
    expect(reply.status).toBe(409)
    expect(reply.body.error.data.reason).toBe('conflict')
    expect(reply.body.error.message).toMatch(/operator account's last active admin credential/)
  }

  it('refuses to disable or revoke the bootstrap key while it is the only way in', async () => {
    const me = (await operator.query('me')).body.result.data
    expectConflict(await operator.mutation('token.setDisabled', { id: me.tokenId, disabled: true }))
    expectConflict(await operator.mutation('token.revoke', { id: me.tokenId }))
    expect((await operator.query('me')).status).toBe(200)
    const events = await t.app.deps.db
      .selectFrom('audit_events')
      .select('action')
      .where('target_id', '=', me.tokenId)
      .execute()
    expect(events.map((event) => event.action)).toEqual(['account.bootstrap'])
  })

  it('does not count manager keys, disabled admin keys, or other accounts', async () => {
    const me = (await operator.query('me')).body.result.data
    const spare = await issue(operator, { name: 'spare admin', role: 'admin', environment: 'live', scopes: ALL })
    await issue(operator, { name: 'reader', environment: 'live' })
    expect((await operator.mutation('token.setDisabled', { id: spare.id, disabled: true })).status).toBe(200)
    await newAccount(operator, 'a customer with its own admin key')
    expectConflict(await operator.mutation('token.revoke', { id: me.tokenId }))
    // Enabled again, the spare admin key is a way in: the bootstrap key may go, then the spare may not.
    expect((await operator.mutation('token.setDisabled', { id: spare.id, disabled: false })).status).toBe(200)
    const spareCaller = operator.as(spare.token)
    expect((await spareCaller.mutation('token.revoke', { id: me.tokenId })).status).toBe(200)
    expectConflict(await spareCaller.mutation('token.revoke', { id: spare.id }))
    operator = spareCaller
  })

  it('lets the last key rotate with immediate expiry: the new key is the way in', async () => {
    const me = (await operator.query('me')).body.result.data
    const rotated = await operator.mutation('token.rotate', { id: me.tokenId, oldExpiresIn: 0 })
    expect(rotated.status).toBe(200)
    const fresh = operator.as(rotated.body.result.data.token) as Caller
    expect((await fresh.query('me')).body.result.data).toMatchObject({ operator: true, role: 'admin' })
    expect((await fresh.mutation('token.verify', { token: operator.key })).body.result.data).toEqual({
      valid: false,
      reason: 'EXPIRED',
    })
    expectConflict(await fresh.mutation('token.setDisabled', { id: rotated.body.result.data.id, disabled: true }))
    expectConflict(await fresh.mutation('token.revoke', { id: rotated.body.result.data.id }))
    operator = fresh
  })

  it('holds under concurrent revocations: one of two last keys always stays', async () => {
    for (let round = 0; round < 5; round++) {
      const me = (await operator.query('me')).body.result.data
      const other = await issue(operator, { name: `other ${round}`, role: 'admin', environment: 'live', scopes: ALL })
      const replies = await Promise.all([
        operator.mutation('token.revoke', { id: me.tokenId }),
        operator.as(other.token).mutation('token.revoke', { id: other.id }),
      ])
      expect(replies.map((reply) => reply.status).sort()).toEqual([200, 409])
      operator = replies[0]?.status === 200 ? operator.as(other.token) : operator
    }
  })

  it('counts an admin user as a way in (they sign in)', async () => {
    const me = (await operator.query('me')).body.result.data
    const admin = await createUser(operator, { role: 'admin' })
    expect((await operator.mutation('token.setDisabled', { id: me.tokenId, disabled: true })).status).toBe(200)
    // The user signs in and enables the key again; the user, the last admin user, stays (users' own rule).
    const { token } = await login(operator, admin.username)
    expect((await operator.as(token).mutation('token.setDisabled', { id: me.tokenId, disabled: false })).status).toBe(
      200,
    )
    const removal = await operator.mutation('user.remove', { id: admin.id })
    expect(removal.status).toBe(409)
    expect(removal.body.error.message).toMatch(/keeps at least one admin user/)
  })

  it('revokes a leaked last key anyway, says so loudly, and recover-operator lets the team back in', async () => {
    // A fresh app: the only way in is the bootstrap key, which leaks.
    const app = await startTestApp()
    try {
      const me = (await app.operator.query('me')).body.result.data
      const reported = await app.operator.mutation('token.reportLeaked', { tokens: [app.bootstrapKey] })
      expect(reported.status).toBe(200)
      expect(reported.body.result.data.results).toEqual([
        { index: 0, status: 'revoked', tokenId: me.tokenId, accountId: me.accountId },
      ])
      expect((await app.operator.query('me')).status).toBe(401)
      expect(app.logs.join('')).toMatch(/"level":50.*last active admin key of the operator account.*recover-operator/)
      const lockedOut = await app.app.deps.db
        .selectFrom('audit_events')
        .select('action')
        .where('action', '=', 'account.operator_locked_out')
        .execute()
      expect(lockedOut).toHaveLength(1)

      const recovered = await recoverOperator({ DATABASE_URL: app.databaseUrl })
      expect(recovered.code).toBe(0)
      expect(recovered.stderr).toMatch(/issued tok_\w+, an admin key of the operator account/)
      const key = recovered.stdout.trim()
      expect(key).toMatch(/^tk_live_\w{49}$/)
      const back = app.operator.as(key)
      expect((await back.query('me')).body.result.data).toMatchObject({
        operator: true,
        role: 'admin',
        scopes: ['tokend:verify', 'tokend:scanner'],
        name: 'recovered admin',
      })
      const audited = await app.app.deps.db
        .selectFrom('audit_events')
        .selectAll()
        .where('action', '=', 'account.recover_operator')
        .executeTakeFirstOrThrow()
      expect(audited).toMatchObject({ actor_type: 'system', user_agent: 'tokend recover-operator' })
      expect(audited.data).toHaveProperty('host')
      expect(recovered.stdout + recovered.stderr).not.toContain(app.bootstrapKey)
    } finally {
      await app.stop()
    }
  })
})

describe('recover-operator', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await startTestApp()
  })
  afterAll(() => t?.stop())

  it('writes the key to --out as bootstrap does, and commits nothing when it cannot', async () => {
    const out = join(dir, 'recovered.key')
    const written = await recoverOperator({ DATABASE_URL: t.databaseUrl }, ['--out', out])
    expect(written.code).toBe(0)
    expect(await readFile(out, 'utf8')).toBe(written.stdout)
    expect((await stat(out)).mode & 0o777).toBe(0o600)

    const before = await operatorRows(t)
    const again = await recoverOperator({ DATABASE_URL: t.databaseUrl }, ['--out', out])
    expect(again).toMatchObject({ code: 1, stdout: '' })
    expect(again.stderr).toMatch(/cannot write the key to .*recovered.key: it already exists/)
    expect(await operatorRows(t)).toEqual(before)
  })

  it('says what it needs in one line', async () => {
    const missing = await recoverOperator({})
    expect(missing).toMatchObject({ code: 2, stdout: '' })
    expect(missing.stderr).toMatch(/^recover-operator: set DATABASE_URL to tokend's database\nusage: /)
    const unknown = await recoverOperator({ DATABASE_URL: t.databaseUrl }, ['--force'])
    expect(unknown).toMatchObject({ code: 2, stdout: '' })
    expect(unknown.stderr).toMatch(/Unknown option '--force'/)
  })

  it('refuses a database tokend has not bootstrapped', async () => {
    const database = await freshDatabase()
    try {
      const app = await startTestApp({}, database)
      await app.app.deps.db.deleteFrom('audit_events').execute()
      await app.app.deps.db.deleteFrom('access_keys').execute()
      await app.app.deps.db.deleteFrom('accounts').execute()
      await app.stop()
      const reply = await recoverOperator({ DATABASE_URL: database.url })
      expect(reply.code).toBe(1)
      expect(reply.stderr).toMatch(/there is no operator account yet: start tokend/)
    } finally {
      await database.drop()
    }
  })
})

/** Runs the recovery script as an operator would, with only `env` (and PATH) set. */
function recoverOperator(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(tsx, ['src/recover-operator.ts', ...args], {
    cwd: serviceDir,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk) => (stdout += chunk))
  child.stderr?.on('data', (chunk) => (stderr += chunk))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })))
}
