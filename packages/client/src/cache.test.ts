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
