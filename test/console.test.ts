import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Caller, type RunningTokend, repoRoot, startTokend } from '@tokend/testing'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { seriousViolations } from './console/axe.ts'
import { ensureDebianProgram } from './support/debian.ts'

/**
 * The web console (apps/console) end to end: real Chromium (Debian's, driven by
 * playwright-core) against a real tokend process and Postgres. `pnpm test` builds the
 * console first. CONSOLE_SCREENSHOTS=1 also writes the screenshots in docs/console/.
 */
vi.setConfig({ testTimeout: 60_000 })

const PASSWORD = 'correct horse battery staple'
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS === '1' ? join(repoRoot, 'docs/console') : null

let tokend: RunningTokend
let operator: Caller
let browser: Browser
/** Account A, its admin (alice) and manager (mary); account B and its admin key; the operator person (ops). */
const a = { id: '', admin: null as unknown as Caller }
const b = { id: '', keyId: '', key: '' }
let alice: BrowserContext
let page: Page

async function data(reply: Promise<{ status: number; body: any }>) {
  const { status, body } = await reply
  if (status !== 200) throw new Error(`${status} ${JSON.stringify(body)}`)
  return body.result.data
}

async function user(admin: Caller, username: string, role: 'admin' | 'manager', accountId?: string) {
  return data(
    admin.mutation('user.create', { username, email: `${username}@example.com`, password: PASSWORD, role, accountId }),
  )
}

async function verify(token: string): Promise<{ valid: boolean; reason?: string }> {
  // What a sibling service would send: plain HTTP with its tokend:verify key.
  const response = await fetch(`${tokend.url}/trpc/token.verify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokend.bootstrapKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  })
  return ((await response.json()) as any).result.data
}

/** A fresh browser context (its own cookies) at `width`, with CSP violations collected. */
async function open(width = 1280): Promise<{ context: BrowserContext; page: Page; csp: string[] }> {
  const context = await browser.newContext({ viewport: { width, height: 900 }, baseURL: tokend.url })
  const opened = await context.newPage()
  const csp: string[] = []
  opened.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) csp.push(message.text())
  })
  return { context, page: opened, csp }
}

async function signIn(target: Page, username: string, password = PASSWORD) {
  await target.getByLabel('Username').fill(username)
  await target.getByLabel('Password').fill(password)
  await target.getByRole('button', { name: 'Sign in' }).click()
}

async function expectAccessible(target: Page, screen: string) {
  expect(await seriousViolations(target), screen).toEqual([])
}

async function screenshot(target: Page, name: string) {
  if (!SCREENSHOTS) return
  await mkdir(SCREENSHOTS, { recursive: true })
  await target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

function row(target: Page, name: string | RegExp) {
  return target.getByRole('row').filter({ has: target.getByRole('rowheader', { name }) })
}

/** Runs the `tokend` CLI as a person at a terminal would. */
async function cli(args: string[], key: string): Promise<string> {
  const child = spawn(process.execPath, [join(repoRoot, 'packages/cli/dist/tokend.js'), ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TOKEND_URL: tokend.url, TOKEND_KEY: key },
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const code = await new Promise((resolve) => child.on('close', resolve))
  if (code !== 0) throw new Error(`tokend ${args.join(' ')} exited ${code}: ${output}`)
  return output
}

beforeAll(async () => {
  const executablePath = await ensureDebianProgram('chromium')
  if (!existsSync(join(repoRoot, 'apps/console/dist/index.html'))) {
    throw new Error('the console is not built: run `pnpm build:console` (`pnpm test` does)')
  }
  tokend = await startTokend({ LOG_LEVEL: 'info', TOKEND_LOGIN_MAX_PER_USERNAME: '3' })
  operator = new Caller(tokend.url, tokend.bootstrapKey)
  a.id = (await data(operator.mutation('account.create', { name: 'Acme Voice', plan: 'paid' }))).id
  const aKey = await data(
    operator.mutation('token.issue', { name: 'acme admin', environment: 'live', role: 'admin', accountId: a.id }),
  )
  a.admin = operator.as(aKey.token)
  await user(a.admin, 'alice', 'admin')
  await user(a.admin, 'mary', 'manager')
  b.id = (await data(operator.mutation('account.create', { name: 'Globex', plan: 'paid' }))).id
  const bKey = await data(
    operator.mutation('token.issue', { name: 'globex app', environment: 'test', accountId: b.id }),
  )
  b.keyId = bKey.id
  b.key = bKey.token
  await user(operator, 'ops', 'admin')
  browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  ;({ context: alice, page } = await open())
  // Room for apt-get to install chromium on a fresh machine.
}, 600_000)

afterAll(async () => {
  await browser?.close()
  await tokend?.stop()
})

describe('serving the console', () => {
  it('redirects / to /console/, and serves the page with no-store under a strict CSP', async () => {
    const root = await fetch(`${tokend.url}/`, { redirect: 'manual' })
    expect(root.status).toBe(302)
    expect(root.headers.get('location')).toBe('/console/')
    const html = await fetch(`${tokend.url}/console/keys`)
    expect(html.status).toBe(200)
    expect(html.headers.get('cache-control')).toBe('no-store')
    const csp = html.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/)
    // Everything the page loads is a hashed file, cached for a year.
    const body = await html.text()
    expect(body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    const assets = [...body.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((match) => match[1] as string)
    expect(assets.length).toBeGreaterThanOrEqual(2)
    for (const asset of assets) {
      expect(asset).toMatch(/-[\w-]{8}\.(js|css)$/)
      const response = await fetch(tokend.url + asset)
      expect(response.status, asset).toBe(200)
      expect(response.headers.get('cache-control'), asset).toBe('public, max-age=31536000, immutable')
    }
  })
})

describe('an account admin', () => {
  let plaintext = ''

  it('signs in; the session never reaches script-readable storage', async () => {
    const { csp } = { csp: [] as string[] }
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) csp.push(message.text())
    })
    await page.goto('/console/')
    await expect.poll(() => page.getByRole('heading', { name: 'tokend console' }).isVisible()).toBe(true)
    await screenshot(page, 'sign-in')
    await expectAccessible(page, 'sign-in')
    // Empty fields are caught inline, before any request.
    await page.getByRole('button', { name: 'Sign in' }).click()
    await expect.poll(() => page.getByText('Enter your username.').isVisible()).toBe(true)
    await signIn(page, 'alice', 'wrong password')
    await expect.poll(() => page.getByText('Unknown username or wrong password.').isVisible()).toBe(true)
    await signIn(page, 'alice')
    await expect.poll(() => page.getByRole('heading', { name: 'Keys', level: 1 }).isVisible()).toBe(true)
    expect(page.url()).toBe(`${tokend.url}/console/keys`)
    await expect.poll(() => row(page, 'acme admin').count()).toBe(1)
    const storage = await page.evaluate(() => ({
      cookie: (globalThis as any).document.cookie,
      local: JSON.stringify({ ...(globalThis as any).localStorage }),
      session: JSON.stringify({ ...(globalThis as any).sessionStorage }),
    }))
    expect(storage.cookie).not.toContain('tokend_session')
    expect(storage.local + storage.session).not.toMatch(/ey[\w-]{10,}\./)
    const [cookie] = await alice.cookies()
    expect(cookie).toMatchObject({ name: 'tokend_session', httpOnly: true, sameSite: 'Strict' })
    expect(csp).toEqual([])
    await expectAccessible(page, 'keys (empty)')
  })

  it('creates a key and sees its plaintext exactly once', async () => {
    await page.getByRole('button', { name: 'New key' }).click()
    const dialog = page.getByRole('dialog', { name: 'New key' })
    await dialog.getByRole('button', { name: 'Create key' }).click()
    await expect.poll(() => dialog.getByText('Give the key a name').isVisible()).toBe(true)
    await dialog.getByLabel('Name').fill('billing-service')
    await dialog.getByLabel('Detail (optional)').fill('bills calls')
    await dialog.getByLabel('Scopes').fill('recordings:read, Not A Scope')
    await dialog.getByLabel('Expires').selectOption('30d')
    await dialog.getByRole('button', { name: 'Create key' }).click()
    // The server's field error, shown at the field.
    await expect.poll(() => dialog.getByText('scopes look like "recordings:read"').isVisible()).toBe(true)
    await dialog.getByLabel('Scopes').fill('recordings:read')
    await dialog.getByRole('button', { name: 'Create key' }).click()
    const shown = page.getByRole('dialog', { name: 'Key "billing-service" created' })
    await expect.poll(() => shown.isVisible()).toBe(true)
    plaintext = await shown.getByLabel('plaintext key').inputValue()
    expect(plaintext).toMatch(/^tk_test_[0-9A-Za-z]{49}$/)
    await screenshot(page, 'new-key')
    await expectAccessible(page, 'new key: plaintext shown once')
    const done = shown.getByRole('button', { name: 'Done' })
    expect(await done.isDisabled()).toBe(true)
    // Escape does not close it before the key is stored.
    await page.keyboard.press('Escape')
    expect(await shown.isVisible()).toBe(true)
    await shown.getByLabel('I have stored it').check()
    await done.click()
    await expect.poll(() => shown.isVisible()).toBe(false)
    await expect.poll(() => row(page, /billing-service/).count()).toBe(1)
    expect(await page.content()).not.toContain(plaintext)
    expect(await page.evaluate(() => (globalThis as any).document.body.textContent)).not.toContain(plaintext.slice(8))
    // The key works for a sibling service.
    expect(await verify(plaintext)).toMatchObject({ valid: true, name: 'billing-service' })
  })

  it('rotates a key with an overlap, then disables and enables the new one', async () => {
    await page.getByRole('button', { name: /^Rotate billing-service/ }).click()
    const dialog = page.getByRole('dialog', { name: 'Rotate "billing-service"' })
    await dialog.getByLabel('In 1 hour').check()
    await dialog.getByRole('button', { name: 'Rotate' }).click()
    const shown = page.getByRole('dialog', { name: 'Key "billing-service" rotated' })
    await expect.poll(() => shown.isVisible()).toBe(true)
    const successor = await shown.getByLabel('new plaintext key').inputValue()
    await shown.getByLabel('I have stored it').check()
    await shown.getByRole('button', { name: 'Done' }).click()
    await expect.poll(() => row(page, /billing-service/).count()).toBe(2)
    // Both keys work during the overlap.
    expect((await verify(plaintext)).valid).toBe(true)
    expect((await verify(successor)).valid).toBe(true)

    const newest = row(page, /billing-service/).first()
    await newest.getByRole('button', { name: /^Disable/ }).click()
    await expect.poll(() => newest.locator('[data-status]').textContent()).toBe('disabled')
    expect(await verify(successor)).toMatchObject({ valid: false, reason: 'DISABLED' })
    await newest.getByRole('button', { name: /^Enable/ }).click()
    await expect.poll(() => newest.locator('[data-status]').textContent()).toBe('active')
    expect((await verify(successor)).valid).toBe(true)
  })

  it('opens and leaves dialogs from the keyboard, with a visible focus', async () => {
    await page.getByRole('button', { name: 'New key' }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'New key' })
    await expect.poll(() => dialog.isVisible()).toBe(true)
    // Focus moves into the dialog, on its first field; the focus ring shows where it is.
    expect(await page.evaluate(() => (globalThis as any).document.activeElement.getAttribute('aria-invalid'))).toBe(
      'false',
    )
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.closest('dialog') !== null)).toBe(true)
    await page.keyboard.press('Tab')
    expect(
      await page.evaluate(
        () => (globalThis as any).getComputedStyle((globalThis as any).document.activeElement).outlineStyle,
      ),
    ).toBe('solid')
    await page.keyboard.press('Escape')
    await expect.poll(() => dialog.isVisible()).toBe(false)
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe('New key')
  })

  it('revokes a key only after its name is typed (keyboard only)', async () => {
    const oldest = row(page, /billing-service/).last()
    await oldest.getByRole('button', { name: /^Revoke/ }).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog', { name: 'Revoke "billing-service"' })
    await expect.poll(() => dialog.isVisible()).toBe(true)
    const confirm = dialog.getByRole('button', { name: 'Revoke key' })
    expect(await confirm.isDisabled()).toBe(true)
    // Focus is in the confirmation field.
    await page.keyboard.type('billing')
    expect(await confirm.isDisabled()).toBe(true)
    await page.keyboard.press('Enter')
    expect(await dialog.isVisible()).toBe(true)
    await page.keyboard.type('-service')
    expect(await confirm.isDisabled()).toBe(false)
    await expectAccessible(page, 'revoke dialog')
    await page.keyboard.press('Enter')
    await expect.poll(() => oldest.locator('[data-status]').textContent()).toBe('revoked')
    expect(await verify(plaintext)).toMatchObject({ valid: false, reason: 'REVOKED' })
  })

  it('sees a key issued and revoked elsewhere change state without a reload', async () => {
    const issued = await data(a.admin.mutation('token.issue', { name: 'cli-made', environment: 'test' }))
    await page.reload()
    await expect.poll(() => row(page, 'cli-made').count()).toBe(1)
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1))
    // The change stream is open: the page is not polling.
    await expect.poll(() => page.locator('.live').textContent(), { timeout: 10_000 }).toBe('Live')
    await cli(['keys', 'revoke', issued.id], tokend.bootstrapKey)
    const revokedAt = Date.now()
    await expect
      .poll(() => row(page, 'cli-made').locator('[data-status]').textContent(), { timeout: 5_000, interval: 50 })
      .toBe('revoked')
    const lag = Date.now() - revokedAt
    process.stderr.write(`console: a key revoked by the CLI showed as revoked ${lag} ms later\n`)
    expect(lag).toBeLessThan(3_000)
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1)
  })

  it('filters, searches and pages the keys', async () => {
    await page.getByLabel('Search by name').fill('cli')
    await expect.poll(() => page.getByRole('row').count()).toBe(2)
    await page.getByLabel('Search by name').fill('')
    await page.getByLabel('Status').selectOption('revoked')
    await expect.poll(() => page.locator('tbody tr').count()).toBe(2)
    await page.getByLabel('Status').selectOption('all')
    // tokend filters (token.list's expiringWithin / unusedFor), so paging counts only matching keys.
    const listed = (field: string, days: number) =>
      page.waitForRequest((request) => {
        const url = decodeURIComponent(request.url())
        return url.includes('token.list') && url.includes(`"${field}":${days}`)
      })
    let asked = listed('expiringWithin', 30)
    await page.getByLabel('Expiring within 30 days').check()
    await asked
    // The two billing-service keys expire within 30 days (rotation keeps the lifetime); cli-made never does.
    await expect.poll(() => page.locator('tbody tr').count()).toBe(2)
    asked = listed('expiringWithin', 29)
    await page.getByLabel('Days until expiry').fill('29')
    await asked
    // Only the rotated-out key, whose overlap shortened its expiry (since revoked): the new one has 30 days.
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1)
    expect(
      await row(page, /billing-service/)
        .locator('[data-status]')
        .textContent(),
    ).toBe('revoked')
    await page.getByLabel('Expiring within 29 days').uncheck()
    await page.getByLabel('Days until expiry').fill('30')
    asked = listed('unusedFor', 90)
    await page.getByLabel('Unused for 90 days').check()
    await asked
    await expect.poll(() => page.getByText('No keys match these filters.').isVisible()).toBe(true)
    await page.getByLabel('Unused for 90 days').uncheck()
    await screenshot(page, 'keys')
    await expectAccessible(page, 'keys')
  })

  it('reads the audit log with each actor by name', async () => {
    await page.getByRole('link', { name: 'Audit' }).click()
    await expect.poll(() => page.locator('tbody tr').count()).toBeGreaterThan(5)
    const actorOf = async (action: string) =>
      page.locator(`tr[data-action="${action}"]`).first().locator('.actor').textContent()
    // Newest first: the API call with account A's admin key, alice's, the operator's.
    await expect
      .poll(() => page.locator('tr[data-action="token.issue"] .actor').allTextContents())
      .toEqual(['acme admin', 'alice', 'bootstrap admin'])
    expect(await actorOf('token.rotate')).toBe('alice')
    expect(await actorOf('token.disable')).toBe('alice')
    expect(await actorOf('token.enable')).toBe('alice')
    // The newest revoke is the CLI's, made with the operator's bootstrap key.
    expect(await actorOf('token.revoke')).toBe('bootstrap admin')
    await page.getByLabel('Action').selectOption('token.revoke')
    await page.getByRole('button', { name: 'Apply' }).click()
    await expect.poll(() => page.locator('tbody tr').count()).toBe(2)
    await expect.poll(() => page.locator('.actor').allTextContents()).toEqual(['bootstrap admin', 'alice'])
    await page.getByRole('button', { name: 'Clear' }).click()
    await screenshot(page, 'audit')
    await expectAccessible(page, 'audit')
  })

  it('sees the account with its limits in use, its users and direct links', async () => {
    await page.getByRole('link', { name: 'Account' }).click()
    // acme admin, billing-service (rotated successor), none of the revoked.
    await expect.poll(() => page.locator('.usage').first().textContent()).toBe('2 / 20')
    await screenshot(page, 'account')
    await expectAccessible(page, 'account')
    await page.getByRole('link', { name: 'Users' }).click()
    await expect.poll(() => page.getByRole('rowheader', { name: 'mary' }).isVisible()).toBe(true)
    await expectAccessible(page, 'users')
    await page.getByRole('link', { name: 'Direct links' }).click()
    await expect.poll(() => page.getByText('No direct links yet').isVisible()).toBe(true)
    await page.getByRole('button', { name: 'New direct link' }).click()
    const dialog = page.getByRole('dialog', { name: 'New direct link' })
    await dialog.getByLabel('Resource type').fill('ai')
    await dialog.getByLabel('Resource id').fill('bot-1')
    await dialog.getByRole('button', { name: 'Create link' }).click()
    const shown = page.getByRole('dialog', { name: 'Direct link created' })
    expect(await shown.getByLabel('direct hash').inputValue()).toMatch(/^direct\./)
    await shown.getByLabel('I have stored it').check()
    await shown.getByRole('button', { name: 'Done' }).click()
    await expect.poll(() => page.getByRole('rowheader', { name: 'ai/bot-1' }).isVisible()).toBe(true)
    await expectAccessible(page, 'direct links')
  })

  it("cannot reach another account's keys", async () => {
    await page.goto(`/console/keys?account=${b.id}`)
    await expect.poll(() => page.locator('[data-problem="forbidden"]').isVisible()).toBe(true)
    expect(await page.getByText('globex app').count()).toBe(0)
    // Nor through the API with the console's own cookie.
    const reply = await page.evaluate(async (account) => {
      const input = encodeURIComponent(JSON.stringify({ accountId: account }))
      const response = await fetch(`/trpc/token.list?input=${input}`, { headers: { 'x-tokend-console': '1' } })
      return response.status
    }, b.id)
    expect(reply).toBe(403)
  })

  it('is usable 390 px wide', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto('/console/keys')
    await expect.poll(() => page.getByRole('button', { name: 'New key' }).isVisible()).toBe(true)
    // The page itself never scrolls sideways; the table scrolls in its own region.
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await screenshot(page, 'keys-390px')
    await expectAccessible(page, 'keys at 390 px')
    await page.setViewportSize({ width: 1280, height: 900 })
  })

  it('is sent back to sign-in when the session ends, then returns to where it was', async () => {
    await page.goto('/console/users')
    await expect.poll(() => page.getByRole('rowheader', { name: 'mary' }).isVisible()).toBe(true)
    // The session is revoked behind the console's back (as by signing out on another device).
    const [cookie] = await alice.cookies()
    await data(operator.as(cookie?.value).mutation('auth.logout'))
    await page.getByRole('link', { name: 'Audit' }).click()
    await expect.poll(() => page.getByText('Your session has ended').isVisible()).toBe(true)
    await signIn(page, 'alice')
    await expect.poll(() => page.getByRole('heading', { name: 'Audit', level: 1 }).isVisible()).toBe(true)
    expect(new URL(page.url()).pathname).toBe('/console/audit')
  })

  it('signs out: the session is revoked, not only forgotten', async () => {
    const [cookie] = await alice.cookies()
    await page.getByRole('button', { name: 'Sign out' }).click()
    await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true)
    expect(await alice.cookies()).toEqual([])
    expect((await operator.as(cookie?.value).query('me')).status).toBe(401)
  })
})

describe('a manager', () => {
  it('sees the keys but no control that changes them', async () => {
    const { context, page: mary } = await open()
    await mary.goto('/console/')
    await signIn(mary, 'mary')
    await expect.poll(() => row(mary, /billing-service/).count()).toBe(2)
    expect(await mary.getByRole('button', { name: 'New key' }).count()).toBe(0)
    expect(await mary.getByRole('button', { name: /^(Rotate|Revoke|Disable|Enable)/ }).count()).toBe(0)
    expect(await mary.getByRole('columnheader', { name: 'Actions' }).count()).toBe(0)
    expect(await mary.getByRole('link', { name: 'Audit' }).count()).toBe(0)
    await expectAccessible(mary, 'keys as a manager')
    await context.close()
  })
})

describe('the platform team (operator)', () => {
  it('creates an account, switches to another and suspends it', async () => {
    const { context, page: ops } = await open()
    await ops.goto('/console/accounts')
    await signIn(ops, 'ops')
    await expect.poll(() => ops.getByRole('heading', { name: 'Accounts', level: 1 }).isVisible()).toBe(true)
    await ops.getByLabel('New account name').fill('Initech')
    await ops.getByRole('button', { name: 'Create account' }).click()
    await expect.poll(() => ops.getByRole('rowheader', { name: 'Initech' }).isVisible()).toBe(true)
    await screenshot(ops, 'accounts')
    await expectAccessible(ops, 'accounts')
    await ops.getByRole('button', { name: 'Open Initech' }).click()
    await expect.poll(() => ops.getByText('No keys yet — create one with New key.').isVisible()).toBe(true)

    // The account switcher: Globex's keys, as the operator sees them.
    await ops.getByRole('link', { name: 'Keys' }).click()
    await ops.getByLabel('Account', { exact: true }).selectOption(b.id)
    await expect.poll(() => row(ops, 'globex app').count()).toBe(1)
    expect(new URL(ops.url()).search).toBe(`?account=${b.id}`)

    await ops.getByRole('link', { name: 'Accounts' }).click()
    expect((await verify(b.key)).valid).toBe(true)
    await ops.getByRole('button', { name: 'Suspend Globex' }).click()
    const globex = ops.locator(`tr[data-account-id="${b.id}"] [data-status]`)
    await expect.poll(() => globex.textContent()).toBe('suspended')
    expect(await verify(b.key)).toMatchObject({ valid: false, reason: 'ACCOUNT_SUSPENDED' })
    await ops.getByRole('button', { name: 'Reactivate Globex' }).click()
    await expect.poll(() => globex.textContent()).toBe('active')
    await context.close()
  })
})

describe('trouble', () => {
  it('shows the sign-in throttle as such', async () => {
    const { context, page: someone } = await open()
    await someone.goto('/console/')
    // The username limit is 3 per window here; alice's successful sign-ins cleared her count.
    for (let attempt = 0; attempt < 4; attempt++) {
      const answered = someone.waitForResponse((response) => response.url().endsWith('/console/api/session'))
      await signIn(someone, 'mary', `wrong ${attempt}`)
      await answered
    }
    await expect
      .poll(() => someone.locator('[data-problem="rate_limited"]').textContent())
      .toMatch(/Too many requests.*try again in \d+ s/)
    await context.close()
  })

  it('says so when tokend cannot be reached', async () => {
    const { context, page: offline } = await open()
    await offline.route('**/trpc/**', (route) => route.abort('connectionrefused'))
    await offline.goto('/console/keys')
    await expect
      .poll(() => offline.locator('[data-problem="unreachable"]').textContent(), { timeout: 20_000 })
      .toMatch(/tokend is unreachable/)
    await context.close()
  })
})
