import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, newAccount, startTestApp, type TestApp } from './harness.ts'

/**
 * A verify caller's key is remembered between requests (tokens/caller-keys.ts) so that
 * it is not parsed and hashed again; what it stands for must still follow every change
 * at once, on the fast path as on the others.
 */
let t: TestApp

beforeAll(async () => {
  t = await startTestApp()
})

afterAll(() => t?.stop())

async function verifierOf(accountId?: string) {
  const key = await issue(t.operator, {
    name: 'verifier',
    environment: 'live',
    scopes: ['tokend:verify'],
    ...(accountId ? { accountId } : {}),
  })
  const caller = t.operator.as(key.token)
  // Warm: the caller is now remembered and cached.
  for (let i = 0; i < 3; i++) expect((await caller.mutation('token.verify', { token: 'x' })).status).toBe(200)
  return { key, caller }
}

describe('a remembered verify caller', () => {
  it('is refused on its next request once revoked, disabled or its account suspended', async () => {
    const revoked = await verifierOf()
    await t.operator.mutation('token.revoke', { id: revoked.key.id })
    expect((await revoked.caller.mutation('token.verify', { token: 'x' })).status).toBe(401)

    const disabled = await verifierOf()
    await t.operator.mutation('token.setDisabled', { id: disabled.key.id, disabled: true })
    expect((await disabled.caller.mutation('token.verify', { token: 'x' })).status).toBe(401)
    await t.operator.mutation('token.setDisabled', { id: disabled.key.id, disabled: false })
    expect((await disabled.caller.mutation('token.verify', { token: 'x' })).status).toBe(200)

    const { accountId } = await newAccount(t.operator, 'suspended caller')
    const suspended = await verifierOf(accountId)
    await t.operator.mutation('account.setStatus', { accountId, status: 'suspended' })
    expect((await suspended.caller.mutation('token.verify', { token: 'x' })).status).toBe(401)
  })

  it('is refused once it expires, though nothing evicted it', async () => {
    const expiresAt = new Date(Date.now() + 1_500).toISOString()
    const key = await issue(t.operator, {
      name: 'short verifier',
      environment: 'live',
      scopes: ['tokend:verify'],
      expiresAt,
    })
    const caller = t.operator.as(key.token)
    expect((await caller.mutation('token.verify', { token: 'x' })).status).toBe(200)
    expect((await caller.mutation('token.verify', { token: 'x' })).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, Date.parse(expiresAt) - Date.now() + 50))
    expect((await caller.mutation('token.verify', { token: 'x' })).status).toBe(401)
  })

  it('is the same principal as an unremembered one, and a lookalike of it is not let in', async () => {
    const { key, caller } = await verifierOf()
    const answer = await caller.mutation('token.verify', { token: key.token })
    expect(answer.body.result.data).toMatchObject({ valid: true, tokenId: key.id, scopes: ['tokend:verify'] })
    const lookalike = `${key.token.slice(0, -1)}${key.token.endsWith('a') ? 'b' : 'a'}`
    expect((await t.operator.as(lookalike).mutation('token.verify', { token: 'x' })).status).toBe(401)
    expect(t.app.deps.callerKeys.size).toBeGreaterThan(0)
  })
})

describe('a verified key seen before', () => {
  it('is judged afresh though its digest is remembered, and unknown or malformed keys are not remembered', async () => {
    const { caller } = await verifierOf()
    const key = await issue(t.operator, { name: 'verified', environment: 'live', scopes: [] })
    const verify = async (token: string) => (await caller.mutation('token.verify', { token })).body.result.data
    expect(await verify(key.token)).toMatchObject({ valid: true, tokenId: key.id })
    expect(t.app.deps.keyDigests.get(key.token)).toBeDefined()
    await t.operator.mutation('token.revoke', { id: key.id })
    expect(await verify(key.token)).toMatchObject({ valid: false, reason: 'REVOKED' })

    const unknown = `${key.token.slice(0, -8)}${'A'.repeat(8)}`
    expect((await verify(unknown)).valid).toBe(false)
    expect((await verify('tk_live_nope')).reason).toBe('MALFORMED')
    expect(t.app.deps.keyDigests.get(unknown)).toBeUndefined()
    expect(t.app.deps.keyDigests.get('tk_live_nope')).toBeUndefined()
  })
})
