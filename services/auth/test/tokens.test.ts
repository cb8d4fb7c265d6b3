import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Caller, issue, newAccount, startTestApp, type TestApp } from './harness.ts'

let t: TestApp
let verify: (token: string, require?: unknown) => Promise<any>

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp()
  verify = async (token, require) => {
    const reply = await t.operator.mutation('token.verify', { token, require })
    expect(reply.status).toBe(200)
    return reply.body.result.data
  }
})

describe('token.issue and token.verify', () => {
  it('issues a key that verifies, with the documented shapes', async () => {
    const issued = await issue(t.operator, {
      name: 'voice-api',
      detail: 'recordings service',
      environment: 'live',
      scopes: ['recordings:read', 'recordings:write'],
      expiresIn: '30d',
    })
    expect(issued.token).toMatch(/^tk_live_[0-9A-Za-z]{49}$/)
    expect(issued).toMatchObject({
      id: expect.stringMatching(/^tok_/),
      start: issued.token.slice(0, 12),
      name: 'voice-api',
      environment: 'live',
      role: 'manager',
      scopes: ['recordings:read', 'recordings:write'],
      rotatedFrom: null,
    })
    const expiresIn = Date.parse(issued.expiresAt as string) - Date.parse(issued.createdAt as string)
    expect(Math.round(expiresIn / 86_400_000)).toBe(30)

    expect(await verify(issued.token)).toEqual({
      valid: true,
      kind: 'access_key',
      tokenId: issued.id,
      accountId: issued.accountId,
      environment: 'live',
      role: 'manager',
      scopes: ['recordings:read', 'recordings:write'],
      name: 'voice-api',
      expiresAt: issued.expiresAt,
    })
  })

  it.each([
    ['30d', 30],
    ['90d', 90],
    ['1y', 365],
  ])('supports the expiry preset %s', async (expiresIn, days) => {
    const issued = await issue(t.operator, { expiresIn })
    const ms = Date.parse(issued.expiresAt as string) - Date.parse(issued.createdAt as string)
    expect(Math.round(ms / 86_400_000)).toBe(days)
  })

  it('never expires without an expiry, or with "never"', async () => {
    expect((await issue(t.operator)).expiresAt).toBeNull()
    expect((await issue(t.operator, { expiresIn: 'never' })).expiresAt).toBeNull()
  })

  it('takes an explicit expiresAt', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    expect((await issue(t.operator, { expiresAt })).expiresAt).toBe(expiresAt)
  })

  it('answers MALFORMED for lookalikes without a lookup', async () => {
    const issued = await issue(t.operator)
    const flipped = issued.token.slice(0, -1) + (issued.token.endsWith('a') ? 'b' : 'a')
    for (const token of ['', 'nope', flipped, issued.token.replace('tk_', 'xx_'), `${issued.token}x`]) {
      expect(await verify(token)).toEqual({ valid: false, reason: 'MALFORMED' })
    }
  })

  it('answers NOT_FOUND for a well-formed key that was never issued', async () => {
    const { generateKey } = await import('@tokend/keys')
    expect(await verify(generateKey('tk', 'live'))).toEqual({ valid: false, reason: 'NOT_FOUND' })
  })

  it('answers EXPIRED once the expiry passes, even for a cached key', async () => {
    const expiresAt = new Date(Date.now() + 1_500).toISOString()
    const issued = await issue(t.operator, { expiresAt })
    expect((await verify(issued.token)).valid).toBe(true) // now cached
    await new Promise((resolve) => setTimeout(resolve, Date.parse(expiresAt) - Date.now() + 50))
    expect(await verify(issued.token)).toEqual({ valid: false, reason: 'EXPIRED' })
  })

  it('answers WRONG_ENVIRONMENT and INSUFFICIENT_SCOPE against requirements', async () => {
    const issued = await issue(t.operator, { environment: 'test', scopes: ['recordings:read'] })
    expect(await verify(issued.token, { environment: 'live' })).toEqual({ valid: false, reason: 'WRONG_ENVIRONMENT' })
    expect((await verify(issued.token, { environment: 'test' })).valid).toBe(true)
    expect(await verify(issued.token, { scopes: ['recordings:read', 'recordings:write', 'calls:read'] })).toEqual({
      valid: false,
      reason: 'INSUFFICIENT_SCOPE',
      missingScopes: ['recordings:write', 'calls:read'],
    })
    expect((await verify(issued.token, { scopes: ['recordings:read'] })).valid).toBe(true)
    expect(await verify(issued.token, { role: 'admin' })).toEqual({ valid: false, reason: 'INSUFFICIENT_SCOPE' })
    expect((await verify(issued.token, { role: 'manager' })).valid).toBe(true)
  })
})

describe('token.revoke', () => {
  it('stops a cached key at once and is final and idempotent', async () => {
    const issued = await issue(t.operator)
    expect((await verify(issued.token)).valid).toBe(true)
    const first = await t.operator.mutation('token.revoke', { id: issued.id })
    expect(first.status).toBe(200)
    expect(first.body.result.data).toEqual({ id: issued.id, revokedAt: expect.any(String) })
    expect(await verify(issued.token)).toEqual({ valid: false, reason: 'REVOKED' })

    const again = await t.operator.mutation('token.revoke', { id: issued.id })
    expect(again.body.result.data).toEqual(first.body.result.data)

    const enable = await t.operator.mutation('token.setDisabled', { id: issued.id, disabled: false })
    expect(enable.status).toBe(409)
    expect(enable.body.error.data.reason).toBe('token_revoked')
    expect(await verify(issued.token)).toEqual({ valid: false, reason: 'REVOKED' })
    const rotate = await t.operator.mutation('token.rotate', { id: issued.id })
    expect(rotate.status).toBe(409)
  })

  it('answers 404 for an unknown id', async () => {
    const reply = await t.operator.mutation('token.revoke', { id: 'tok_nope' })
    expect(reply.status).toBe(404)
    expect(reply.body.error.data.reason).toBe('not_found')
  })
})

describe('token.setDisabled', () => {
  it('disables a cached key at once and re-enables it', async () => {
    const issued = await issue(t.operator)
    expect((await verify(issued.token)).valid).toBe(true)
    const disabled = await t.operator.mutation('token.setDisabled', { id: issued.id, disabled: true })
    expect(disabled.body.result.data).toMatchObject({ id: issued.id, disabled: true, status: 'disabled' })
    expect(await verify(issued.token)).toEqual({ valid: false, reason: 'DISABLED' })
    const enabled = await t.operator.mutation('token.setDisabled', { id: issued.id, disabled: false })
    expect(enabled.body.result.data).toMatchObject({ disabled: false, status: 'active' })
    expect((await verify(issued.token)).valid).toBe(true)
  })
})

describe('token.rotate', () => {
  it('issues a twin key; both work; the old expiry is kept', async () => {
    const old = await issue(t.operator, { name: 'cron', scopes: ['calls:read'], expiresIn: '90d', role: 'admin' })
    const reply = await t.operator.mutation('token.rotate', { id: old.id })
    const rotated = reply.body.result.data
    expect(rotated).toMatchObject({
      name: 'cron',
      role: 'admin',
      scopes: ['calls:read'],
      environment: 'test',
      rotatedFrom: old.id,
    })
    expect(rotated.token).not.toBe(old.token)
    expect((await verify(old.token)).valid).toBe(true)
    expect((await verify(rotated.token)).valid).toBe(true)
    const oldInfo = await t.operator.query('token.get', { id: old.id })
    expect(oldInfo.body.result.data.expiresAt).toBe(old.expiresAt)
    const newInfo = await t.operator.query('token.get', { id: rotated.id })
    expect(newInfo.body.result.data.rotatedFrom).toBe(old.id)
  })

  it('shortens the old key with oldExpiresIn, and rejects it once that passes', async () => {
    const old = await issue(t.operator)
    expect((await verify(old.token)).valid).toBe(true) // cached with no expiry
    const reply = await t.operator.mutation('token.rotate', { id: old.id, oldExpiresIn: 1 })
    expect(reply.status).toBe(200)
    const info = (await t.operator.query('token.get', { id: old.id })).body.result.data
    expect(Date.parse(info.expiresAt) - Date.now()).toBeLessThanOrEqual(1_000)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    expect(await verify(old.token)).toEqual({ valid: false, reason: 'EXPIRED' })
    expect((await verify(reply.body.result.data.token)).valid).toBe(true)
  })

  it('never extends the old expiry', async () => {
    const expiresAt = new Date(Date.now() + 60_000).toISOString()
    const old = await issue(t.operator, { expiresAt })
    await t.operator.mutation('token.rotate', { id: old.id, oldExpiresIn: 86_400 })
    const info = (await t.operator.query('token.get', { id: old.id })).body.result.data
    expect(info.expiresAt).toBe(expiresAt)
  })

  it('gives the new key the old key’s lifetime, counted from now', async () => {
    const old = await issue(t.operator, { expiresIn: '30d' })
    const rotated = (await t.operator.mutation('token.rotate', { id: old.id })).body.result.data
    const ms = Date.parse(rotated.expiresAt) - Date.parse(rotated.createdAt)
    expect(Math.round(ms / 86_400_000)).toBe(30)
  })
})

describe('token.list and token.get', () => {
  let customer: Caller
  const ids: Record<string, string> = {}

  beforeAll(async () => {
    const account = await newAccount(t.operator, 'listing')
    customer = account.admin
    ids.admin = account.adminKey.id
    ids.active = (await issue(customer, { name: 'active' })).id
    ids.live = (await issue(customer, { name: 'live one', environment: 'live' })).id
    ids.disabled = (await issue(customer, { name: 'disabled' })).id
    await customer.mutation('token.setDisabled', { id: ids.disabled, disabled: true })
    ids.revoked = (await issue(customer, { name: 'revoked' })).id
    await customer.mutation('token.revoke', { id: ids.revoked })
    ids.expired = (await issue(customer, { name: 'expired', expiresAt: new Date(Date.now() + 300).toISOString() })).id
    await new Promise((resolve) => setTimeout(resolve, 350))
  })

  const listed = async (input: unknown) => {
    const reply = await customer.query('token.list', input)
    expect(reply.status).toBe(200)
    return reply.body.result.data.items.map((item: { id: string }) => item.id)
  }

  it('filters by status and environment, newest first', async () => {
    expect(await listed({ status: 'all' })).toEqual([
      ids.expired,
      ids.revoked,
      ids.disabled,
      ids.live,
      ids.active,
      ids.admin,
    ])
    expect(await listed({ status: 'active' })).toEqual([ids.live, ids.active, ids.admin])
    expect(await listed({ status: 'revoked' })).toEqual([ids.revoked])
    expect(await listed({ status: 'expired' })).toEqual([ids.expired])
    expect(await listed({ status: 'disabled' })).toEqual([ids.disabled])
    expect(await listed({ environment: 'live' })).toEqual([ids.live, ids.admin])
    expect(await listed(undefined)).toHaveLength(6)
  })

  it('reports each status in TokenInfo', async () => {
    const items = (await customer.query('token.list', {})).body.result.data.items
    const status = Object.fromEntries(items.map((item: { id: string; status: string }) => [item.id, item.status]))
    expect(status[ids.expired as string]).toBe('expired')
    expect(status[ids.revoked as string]).toBe('revoked')
    expect(status[ids.disabled as string]).toBe('disabled')
    expect(status[ids.active as string]).toBe('active')
  })

  it('pages with a cursor', async () => {
    const seen: string[] = []
    let cursor: string | undefined
    for (let page = 0; page < 10; page++) {
      const data = (await customer.query('token.list', { limit: 4, cursor })).body.result.data
      seen.push(...data.items.map((item: { id: string }) => item.id))
      cursor = data.nextCursor ?? undefined
      if (!cursor) break
    }
    expect(seen).toEqual(await listed({ limit: 100 }))
  })

  it('gets one key without its secret', async () => {
    const info = (await customer.query('token.get', { id: ids.active })).body.result.data
    expect(Object.keys(info).sort()).toEqual(
      [
        'id',
        'accountId',
        'start',
        'name',
        'detail',
        'environment',
        'role',
        'scopes',
        'status',
        'createdAt',
        'expiresAt',
        'lastUsedAt',
        'revokedAt',
        'disabled',
        'rotatedFrom',
        'meta',
        'allowedCidrs',
      ].sort(),
    )
  })

  it('lets the operator list another account with accountId', async () => {
    const account = await customer.query('me').then((reply) => reply.body.result.data.accountId)
    const reply = await t.operator.query('token.list', { accountId: account, limit: 100 })
    expect(reply.body.result.data.items).toHaveLength(6)
  })
})

describe('me', () => {
  it("returns the caller's principal", async () => {
    const reply = await t.operator.query('me')
    expect(reply.body.result.data).toMatchObject({
      kind: 'access_key',
      operator: true,
      role: 'admin',
      scopes: ['tokend:verify', 'tokend:scanner'],
    })
  })
})
