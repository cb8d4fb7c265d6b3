import { readdir, readFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { RateLimitedError } from '../errors.ts'
import { PasswordHasher } from './passwords.ts'

const hashers: PasswordHasher[] = []
afterEach(() => {
  for (const hasher of hashers.splice(0)) hasher.stop()
})

// Cheap parameters: these tests are about the gate, not the hash's strength (config enforces that).
function cheap(concurrency: number): PasswordHasher {
  const hasher = new PasswordHasher({ memoryKib: 1024, timeCost: 1, concurrency })
  hashers.push(hasher)
  return hasher
}

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

  it('hashes in a child process whose hashing threads run at the lowest priority', async () => {
    const hasher = cheap(2)
    await Promise.all([hasher.hash('one password here'), hasher.hash('another password')])
    const pid = hasher.pid as number
    expect(pid).not.toBe(process.pid)
    // Field 19 of /proc/<pid>/task/<tid>/stat is the nice value (after the parenthesised name).
    const tasks = await readdir(`/proc/${pid}/task`)
    const nice = await Promise.all(
      tasks.map(async (tid) => {
        const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
      }),
    )
    expect(nice).toContain(19) // the main thread and the thread pool argon2 runs on
    expect(nice.filter((value) => value === 19).length).toBeGreaterThanOrEqual(2)
  })

  it('starts a new hashing process when the old one dies, failing only what was in flight', async () => {
    const hasher = cheap(2)
    await hasher.hash('first password')
    const first = hasher.pid as number
    const inFlight = hasher.hash('caught in the crash')
    process.kill(first, 'SIGKILL')
    await expect(inFlight).rejects.toThrow(/password hasher exited/)
    const digest = await hasher.hash('after the crash')
    expect(hasher.pid).not.toBe(first)
    expect(await hasher.verify(digest, 'after the crash')).toBe(true)
  })
})
