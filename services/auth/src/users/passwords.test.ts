import { describe, expect, it } from 'vitest'
import { RateLimitedError } from '../errors.ts'
import { PasswordHasher } from './passwords.ts'

// Cheap parameters: these tests are about the gate, not the hash's strength (config enforces that).
const cheap = (concurrency: number) => new PasswordHasher({ memoryKib: 1024, timeCost: 1, concurrency })

describe('PasswordHasher', () => {
  it('verifies the right password only, and normalises Unicode', async () => {
    const hasher = cheap(2)
    const digest = await hasher.hash('Ｃorrect horse battery') // fullwidth C: NFKC makes it "C"
    expect(await hasher.verify(digest, 'Correct horse battery')).toBe(true)
    expect(await hasher.verify(digest, 'correct horse battery')).toBe(false)
  })

  it('answers false for an unknown user after checking against the dummy hash', async () => {
    const hasher = cheap(2)
    expect(await hasher.verify(null, 'anything at all')).toBe(false)
    expect(await hasher.verify(null, '')).toBe(false)
  })

  it('never runs more hashes at once than allowed', async () => {
    const hasher = cheap(2)
    let most = 0
    const sampler = setInterval(() => (most = Math.max(most, hasher.load.running)), 1)
    await Promise.all(Array.from({ length: 12 }, (_, i) => hasher.hash(`password number ${i}`)))
    clearInterval(sampler)
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(2)
    expect(hasher.load).toEqual({ running: 0, waiting: 0 })
  })

  it('refuses with 429 rather than queueing without end', async () => {
    const hasher = cheap(1)
    const results = await Promise.allSettled(Array.from({ length: 70 }, (_, i) => hasher.hash(`pw ${i}`)))
    const refused = results.filter((result) => result.status === 'rejected')
    expect(refused.length).toBe(70 - 1 - 64)
    for (const result of refused) expect((result as PromiseRejectedResult).reason).toBeInstanceOf(RateLimitedError)
    expect(hasher.load).toEqual({ running: 0, waiting: 0 })
  })
})
