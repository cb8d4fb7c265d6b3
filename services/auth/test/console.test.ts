import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONTENT_SECURITY_POLICY, consoleAssets } from '../src/console/assets.ts'
import { createUser, issue, newAccount, PASSWORD, startTestApp, type TestApp } from './harness.ts'

/**
 * The console's server side: sign-in into an httpOnly cookie, the cookie used only by
 * requests that carry the console header, sign-out revoking the session, the account
 * with its limits in use, audit actors by name, and how the built files are served.
 */
let t: TestApp
let customer: Awaited<ReturnType<typeof newAccount>>
const CONSOLE = { 'x-tokend-console': '1' }

beforeAll(async () => {
  // Loopback is a trusted proxy here, for X-Forwarded-Proto.
  t = await startTestApp({
    TOKEND_LOGIN_MAX_PER_USERNAME: '3',
    TOKEND_MAX_ACTIVE_KEYS: '20',
    TOKEND_TRUST_PROXY: 'loopback',
  })
  customer = await newAccount(t.operator, 'console-customer')
})
afterAll(() => t?.stop())

function signIn(body: unknown, headers: Record<string, string> = CONSOLE) {
  return fetch(`${t.url}/console/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

function sessionCookie(response: Response): string {
  const set = response.headers.get('set-cookie') ?? ''
  return set.split(';')[0] as string
}

function me(headers: Record<string, string>) {
  return fetch(`${t.url}/trpc/me`, { headers })
}

describe('console sign-in', () => {
  it('keeps the session JWT in an httpOnly SameSite=Strict cookie, never in the body', async () => {
    const user = await createUser(customer.admin, { role: 'admin' })
    const response = await signIn({ username: user.username, password: PASSWORD })
    expect(response.status).toBe(200)
    const body = (await response.json()) as any
    expect(body).toEqual({ username: user.username, expiresAt: expect.any(String) })
    const set = response.headers.get('set-cookie') ?? ''
    expect(set).toMatch(/^tokend_session=ey[\w-]+\.[\w-]+\.[\w-]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/)
    expect(response.headers.get('cache-control')).toBe('no-store')
  })

  it('marks the cookie Secure when the console is reached over https through a trusted proxy', async () => {
    const user = await createUser(customer.admin)
    const response = await signIn(
      { username: user.username, password: PASSWORD },
      { ...CONSOLE, 'x-forwarded-proto': 'https' },
    )
    expect(response.headers.get('set-cookie')).toMatch(/; Secure$/)
  })

  it('turns the cookie into a credential only on requests with the console header', async () => {
    const user = await createUser(customer.admin, { role: 'manager' })
    const cookie = sessionCookie(await signIn({ username: user.username, password: PASSWORD }))
    const withHeader = await me({ cookie, ...CONSOLE })
    expect(withHeader.status).toBe(200)
    expect(((await withHeader.json()) as any).result.data).toMatchObject({ kind: 'session', username: user.username })
    // A cross-site form or link cannot add the header: the cookie alone is no credential.
    expect((await me({ cookie })).status).toBe(401)
    const mutation = await fetch(`${t.url}/trpc/token.issue`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'csrf', environment: 'test' }),
    })
    expect(mutation.status).toBe(401)
    // An explicit Authorization header wins over the cookie.
    const byKey = await me({ cookie, ...CONSOLE, authorization: `Bearer ${customer.adminKey.token}` })
    expect(((await byKey.json()) as any).result.data.kind).toBe('access_key')
  })

  it('refuses sign-in without the console header, and bad input with a reason', async () => {
    const user = await createUser(customer.admin)
    const noHeader = await signIn({ username: user.username, password: PASSWORD }, {})
    expect(noHeader.status).toBe(403)
    expect(noHeader.headers.get('set-cookie')).toBeNull()
    const missing = await signIn({ username: user.username })
    expect(missing.status).toBe(400)
    expect(((await missing.json()) as any).error).toMatchObject({
      code: 'invalid_input',
      issues: [{ path: 'password' }],
    })
    const notJson = await fetch(`${t.url}/console/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...CONSOLE },
      body: '{"username":',
    })
    expect(notJson.status).toBe(400)
    expect(((await notJson.json()) as any).error.code).toBe('invalid_input')
    const huge = await signIn({ username: user.username, password: 'x'.repeat(20_000) })
    expect(huge.status).toBe(413)
    expect(((await huge.json()) as any).error.code).toBe('invalid_input')
  })

  it('answers a wrong password 401 and the throttle 429 with Retry-After', async () => {
    const user = await createUser(customer.admin)
    const wrong = await signIn({ username: user.username, password: 'not the password' })
    expect(wrong.status).toBe(401)
    expect(((await wrong.json()) as any).error.code).toBe('invalid_credentials')
    let last: Response = wrong
    for (let i = 0; i < 3; i++) last = await signIn({ username: user.username, password: 'not the password' })
    expect(last.status).toBe(429)
    expect(((await last.json()) as any).error).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) })
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThan(0)
  })

  it('signs out: the session is revoked (for the bearer too) and the cookie cleared', async () => {
    const user = await createUser(customer.admin)
    const cookie = sessionCookie(await signIn({ username: user.username, password: PASSWORD }))
    const token = cookie.split('=')[1] as string
    expect((await me({ authorization: `Bearer ${token}` })).status).toBe(200)
    const out = await fetch(`${t.url}/console/api/session`, { method: 'DELETE', headers: { cookie, ...CONSOLE } })
    expect(out.status).toBe(204)
    expect(out.headers.get('set-cookie')).toMatch(/^tokend_session=; Path=\/; Max-Age=0;/)
    expect((await me({ authorization: `Bearer ${token}` })).status).toBe(401)
    expect((await me({ cookie, ...CONSOLE })).status).toBe(401)
    // Signing out twice, or without a session, is not an error.
    const again = await fetch(`${t.url}/console/api/session`, { method: 'DELETE', headers: { cookie, ...CONSOLE } })
    expect(again.status).toBe(204)
    const audit = await customer.admin.query('audit.list', { action: 'auth.logout', actorId: user.id })
    expect(audit.body.result.data.items).toHaveLength(1)
  })

  it('refuses sign-out without the console header', async () => {
    const user = await createUser(customer.admin)
    const cookie = sessionCookie(await signIn({ username: user.username, password: PASSWORD }))
    const out = await fetch(`${t.url}/console/api/session`, { method: 'DELETE', headers: { cookie } })
    expect(out.status).toBe(403)
    expect((await me({ cookie, ...CONSOLE })).status).toBe(200)
  })
})

describe('account.get', () => {
  it("shows the account's plan and limits in use", async () => {
    const account = await newAccount(t.operator, 'limits')
    await issue(account.admin, { name: 'one' })
    const revoked = await issue(account.admin, { name: 'two' })
    await account.admin.mutation('token.revoke', { id: revoked.id })
    const reply = await account.admin.query('account.get')
    expect(reply.status).toBe(200)
    expect(reply.body.result.data).toMatchObject({
      id: account.accountId,
      name: 'limits',
      plan: 'paid',
      status: 'active',
      // The admin key, `one` (the revoked one is not active); three creations this window.
      limits: { activeKeys: 2, maxActiveKeys: 20, creationsInWindow: 3, creationWindowMs: 60_000 },
    })
  })

  it('answers 403 for another account, and lets the operator read any', async () => {
    const other = await newAccount(t.operator, 'other')
    const denied = await customer.admin.query('account.get', { accountId: other.accountId })
    expect(denied.status).toBe(403)
    const operator = await t.operator.query('account.get', { accountId: other.accountId })
    expect(operator.body.result.data.name).toBe('other')
    const unknown = await t.operator.query('account.get', { accountId: 'acc_nope' })
    expect(unknown.status).toBe(404)
  })
})

describe('audit.list', () => {
  it("names each actor: the user's username or the key's name", async () => {
    const account = await newAccount(t.operator, 'audited')
    const user = await createUser(account.admin, { role: 'admin' })
    const items = (await account.admin.query('audit.list')).body.result.data.items as Array<Record<string, unknown>>
    const created = items.find((item) => item.action === 'user.create' && item.targetId === user.id)
    expect(created).toMatchObject({ actorType: 'access_key', actorName: 'audited admin' })
    await signIn({ username: user.username, password: PASSWORD })
    const login = (await account.admin.query('audit.list', { action: 'auth.login' })).body.result.data.items[0]
    expect(login).toMatchObject({ actorType: 'user', actorId: user.id, actorName: user.username })
  })
})

describe('console files', () => {
  let dir: string
  let server: ReturnType<express.Express['listen']>
  let base: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'console-'))
    await mkdir(join(dir, 'assets'))
    await writeFile(
      join(dir, 'index.html'),
      '<!doctype html><script type="module" src="/console/assets/index-AbC123.js"></script>',
    )
    await writeFile(join(dir, 'assets/index-AbC123.js'), 'export {}')
    await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
    const app = express()
    // tokend answers no-store by default (API_HEADERS); the console's files say otherwise.
    app.use((_req, res, next) => {
      res.setHeader('cache-control', 'no-store')
      next()
    })
    app.use('/console', consoleAssets(dir))
    server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  afterAll(async () => {
    server?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves hashed assets for a year and the page with no-store, under a strict CSP', async () => {
    const asset = await fetch(`${base}/console/assets/index-AbC123.js`)
    expect(asset.status).toBe(200)
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    for (const path of [
      '/console',
      '/console/',
      '/console/keys',
      '/console/audit?account=acc_1',
      '/console/index.html',
    ]) {
      const page = await fetch(base + path)
      expect(page.status, path).toBe(200)
      expect(page.headers.get('content-type'), path).toMatch(/^text\/html/)
      expect(page.headers.get('cache-control'), path).toBe('no-store')
      expect(page.headers.get('content-security-policy'), path).toBe(CONTENT_SECURITY_POLICY)
      expect(page.headers.get('x-frame-options'), path).toBe('DENY')
    }
    expect(CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'")
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'")
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe-inline')
    expect((await fetch(`${base}/console/favicon.svg`)).headers.get('cache-control')).toBe('no-cache')
  })

  it('answers 404 for a missing asset instead of the page', async () => {
    const missing = await fetch(`${base}/console/assets/index-Old999.js`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get('cache-control')).not.toMatch(/max-age/)
  })

  it('says how to build the console when it is not built', async () => {
    const app = express()
    app.use('/console', consoleAssets(undefined))
    const bare = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => bare.once('listening', resolve))
    const response = await fetch(`http://127.0.0.1:${(bare.address() as { port: number }).port}/console/`)
    bare.close()
    expect(response.status).toBe(503)
    expect(await response.text()).toMatch(/pnpm build/)
  })
})

describe('tokend at /', () => {
  it('redirects to the console', async () => {
    const response = await fetch(`${t.url}/`, { redirect: 'manual' })
    expect(response.status).toBe(302)
    expect(response.headers.get('location')).toBe('/console/')
  })
})
