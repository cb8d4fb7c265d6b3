import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { applyRequirements, VerifyCache } from './cache.ts'
import type { VerifyResult } from './types.ts'

const valid = (accountId: string, expiresAt: string | null = null): VerifyResult => ({
  valid: true,
  kind: 'access_key',
  tokenId: 'tok_1',
  accountId,
  environment: 'test',
  role: 'manager',
  scopes: ['recordings:read'],
  name: 'k',
  expiresAt,
})

describe('VerifyCache', () => {
  it('answers nothing and stores nothing until the stream says ready', () => {
    const cache = new VerifyCache()
    cache.store('d', valid('acc_1'), cache.epoch)
    expect(cache.get('d')).toBeUndefined()
    cache.resume()
    expect(cache.get('d')).toBeUndefined()
    cache.store('d', valid('acc_1'), cache.epoch)
    expect(cache.get('d')).toMatchObject({ valid: true })
  })

  it('forgets everything when suspended and answers nothing until ready again', () => {
    const cache = new VerifyCache()
    cache.resume()
    cache.store('d', valid('acc_1'), cache.epoch)
    cache.suspend()
    expect(cache.size).toBe(0)
    cache.resume()
    expect(cache.get('d')).toBeUndefined()
  })

  it('never stores an answer fetched before any invalidation or before ready', () => {
    // Model: an answer may land only if nothing happened between its start and its store.
    const op = fc.oneof(
      fc.constant({ type: 'suspend' as const }),
      fc.constant({ type: 'resume' as const }),
      fc.record({ type: fc.constant('evict' as const), digest: fc.constantFrom('a', 'b') }),
      fc.record({ type: fc.constant('evictAccount' as const), accountId: fc.constantFrom('acc_1', 'acc_2') }),
      fc.record({ type: fc.constant('start' as const), digest: fc.constantFrom('a', 'b') }),
      fc.record({ type: fc.constant('finish' as const), index: fc.nat() }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const cache = new VerifyCache()
        const started: { digest: string; epoch: number; clean: boolean; ready: boolean }[] = []
        for (const o of ops) {
          if (o.type === 'start')
            started.push({ digest: o.digest, epoch: cache.epoch, clean: true, ready: cache.ready })
          else if (o.type === 'finish') {
            const load = started.splice(o.index % Math.max(started.length, 1), 1)[0]
            if (!load) continue
            const answer = valid('acc_1')
            cache.store(load.digest, answer, load.epoch)
            const landed = cache.get(load.digest) === answer
            if (landed) expect(load.clean && load.ready).toBe(true)
          } else {
            for (const load of started) load.clean = false
            if (o.type === 'suspend') cache.suspend()
            else if (o.type === 'resume') cache.resume()
            else if (o.type === 'evict') cache.evict(o.digest)
            else cache.evictAccount(o.accountId)
          }
          if (!cache.ready) expect(cache.size).toBe(0)
        }
      }),
      { numRuns: 1000 },
    )
  })

  it("evicts an account's keys and every suspension answer on an account event", () => {
    const cache = new VerifyCache()
    cache.resume()
    cache.store('mine', valid('acc_1'), cache.epoch)
    cache.store('theirs', valid('acc_2'), cache.epoch)
    cache.store('suspended', { valid: false, reason: 'ACCOUNT_SUSPENDED' }, cache.epoch)
    cache.store('revoked', { valid: false, reason: 'REVOKED' }, cache.epoch)
    cache.evictAccount('acc_1')
    expect(cache.get('mine')).toBeUndefined()
    expect(cache.get('suspended')).toBeUndefined()
    expect(cache.get('theirs')).toBeDefined()
    expect(cache.get('revoked')).toEqual({ valid: false, reason: 'REVOKED' })
  })

  it('never keeps a valid answer past the key expiry', async () => {
    const cache = new VerifyCache({ ttlMs: 60_000 })
    cache.resume()
    cache.store('soon', valid('acc_1', new Date(Date.now() + 1_000).toISOString()), cache.epoch)
    cache.store('past', valid('acc_1', new Date(Date.now() - 1).toISOString()), cache.epoch)
    expect(cache.get('soon')).toMatchObject({ valid: true })
    expect(cache.get('past')).toBeUndefined()
    await new Promise((resolve) => setTimeout(resolve, 1_050))
    expect(cache.get('soon')?.valid).not.toBe(true)
  })

  it('does not cache answers that depend on the request', () => {
    const cache = new VerifyCache()
    cache.resume()
    cache.store('a', { valid: false, reason: 'RATE_LIMITED', retryAfterMs: 10 }, cache.epoch)
    cache.store('b', { valid: false, reason: 'INSUFFICIENT_SCOPE' }, cache.epoch)
    expect(cache.size).toBe(0)
  })

  it('freezes what it shares between hits', () => {
    const cache = new VerifyCache()
    cache.resume()
    cache.store('a', valid('acc_1'), cache.epoch)
    const hit = cache.get('a')
    expect(() => hit?.valid && hit.scopes.push('admin:all')).toThrow()
  })
})

describe('applyRequirements', () => {
  it('checks environment, then scopes, then role', () => {
    const result = valid('acc_1')
    expect(applyRequirements(result, { environment: 'live', scopes: ['x:y'] })).toEqual({
      valid: false,
      reason: 'WRONG_ENVIRONMENT',
    })
    expect(applyRequirements(result, { scopes: ['recordings:read', 'x:y'] })).toEqual({
      valid: false,
      reason: 'INSUFFICIENT_SCOPE',
      missingScopes: ['x:y'],
    })
    expect(applyRequirements(result, { role: 'admin' })).toEqual({ valid: false, reason: 'INSUFFICIENT_SCOPE' })
    expect(applyRequirements(result, { environment: 'test', scopes: ['recordings:read'], role: 'manager' })).toBe(
      result,
    )
  })
})

describe("VerifyCache's derived-token parents", () => {
  const derived = (accountId: string, parent = 'tok_p'): VerifyResult => ({
    valid: true,
    kind: 'derived',
    tokenId: parent,
    accountId,
    environment: 'live',
    role: 'manager',
    scopes: ['recordings:read'],
    name: 'k',
    expiresAt: '2099-01-01T00:00:00.000Z',
    audience: 'voice-api',
  })
  const entry = (accountId: string, parent = 'tok_p', result = derived(accountId, parent)) => ({
    parent,
    accountId,
    result,
  })

  it("are forgotten on their key's event, their account's event, a key event without an id, and suspension", () => {
    const cache = new VerifyCache()
    cache.resume()
    const fill = () => {
      cache.storeParent('tok_p a', entry('acc_1'), cache.epoch)
      cache.storeParent('tok_q a', entry('acc_2', 'tok_q'), cache.epoch)
    }
    fill()
    cache.evict('digest of another key', 'tok_other')
    expect(cache.getParent('tok_p a')).toBeDefined()
    cache.evict('digest of tok_p', 'tok_p')
    expect(cache.getParent('tok_p a')).toBeUndefined()
    expect(cache.getParent('tok_q a')).toBeDefined()
    fill()
    cache.evictAccount('acc_2')
    expect(cache.getParent('tok_p a')).toBeDefined()
    expect(cache.getParent('tok_q a')).toBeUndefined()
    fill()
    cache.evict('digest of an older replica', undefined)
    expect([cache.getParent('tok_p a'), cache.getParent('tok_q a')]).toEqual([undefined, undefined])
    fill()
    cache.suspend()
    cache.resume()
    expect([cache.getParent('tok_p a'), cache.getParent('tok_q a')]).toEqual([undefined, undefined])
  })

  it('keeps nothing fetched before an invalidation, nor what its stream cannot invalidate', () => {
    const cache = new VerifyCache()
    const before = cache.epoch
    cache.storeParent('k', entry('acc_1'), before)
    expect(cache.getParent('k')).toBeUndefined() // not ready
    cache.resume('acc_1')
    const started = cache.epoch
    cache.evict('some digest', 'tok_unrelated')
    cache.storeParent('k', entry('acc_1'), started)
    expect(cache.getParent('k')).toBeUndefined()
    cache.storeParent('k', entry('acc_2'), cache.epoch) // another account: its changes are not heard
    expect(cache.getParent('k')).toBeUndefined()
    cache.storeParent('k', entry('acc_1'), cache.epoch)
    expect(cache.getParent('k')).toMatchObject({ valid: true, kind: 'derived' })
  })

  it("keeps the parent's own denials, not the token's", () => {
    const cache = new VerifyCache()
    cache.resume()
    for (const reason of ['REVOKED', 'DISABLED', 'ACCOUNT_SUSPENDED', 'INSUFFICIENT_SCOPE'] as const) {
      cache.storeParent(reason, entry('acc_1', 'tok_p', { valid: false, reason }), cache.epoch)
      expect(cache.getParent(reason)).toEqual({ valid: false, reason })
    }
    for (const reason of ['EXPIRED', 'MALFORMED', 'RATE_LIMITED', 'WRONG_AUDIENCE'] as const) {
      cache.storeParent(reason, entry('acc_1', 'tok_p', { valid: false, reason }), cache.epoch)
      expect(cache.getParent(reason)).toBeUndefined()
    }
    // An answer about something else than a derived token is never a parent's.
    cache.storeParent('key', entry('acc_1', 'tok_p', valid('acc_1')), cache.epoch)
    expect(cache.getParent('key')).toBeUndefined()
  })
})

describe('applyRequirements and audiences', () => {
  it('refuses a derived token for another audience first, and binds no other credential', () => {
    const token: VerifyResult = {
      valid: true,
      kind: 'derived',
      tokenId: 'tok_p',
      accountId: 'acc_1',
      environment: 'live',
      role: 'manager',
      scopes: ['recordings:read'],
      name: 'k',
      expiresAt: '2099-01-01T00:00:00.000Z',
      audience: 'voice-api',
    }
    expect(applyRequirements(token, { audience: 'billing', environment: 'test' })).toEqual({
      valid: false,
      reason: 'WRONG_AUDIENCE',
    })
    expect(applyRequirements(token, { audience: 'voice-api' })).toBe(token)
    expect(applyRequirements(valid('acc_1'), { audience: 'billing' })).toMatchObject({ valid: true })
  })
})
