import { Caller, clusterUrl, query, type Replicas, startReplicas } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * SPEC §14: usage credits are exact across replicas. Three real tokend processes on one
 * database, 60 callers at once: never more successful spends than credits, and close
 * to all of them (replicas may refuse briefly near exhaustion, never overshoot).
 */
let cluster: Replicas
let callers: Caller[]

beforeAll(async () => {
  cluster = await startReplicas(clusterUrl(), 3, {
    TOKEND_MAX_ACTIVE_KEYS: '100000',
    TOKEND_KEY_CREATIONS_PER_MINUTE: '100000',
  })
  callers = cluster.replicas.map((replica) => new Caller(replica.url, cluster.bootstrapKey))
}, 120_000)

afterAll(() => cluster?.stop())

const CALLERS = 60
const at = (i: number) => callers[i % callers.length] as Caller

async function issueWithCredits(remaining: number) {
  const reply = await at(0).mutation('token.issue', { name: 'metered', environment: 'live', credits: { remaining } })
  expect(reply.status).toBe(200)
  return reply.body.result.data as { token: string; id: string }
}

async function stored(id: string): Promise<number> {
  const rows = await query<{ remaining: number }>(
    cluster.databaseUrl,
    'select remaining::int from key_credits where key_id = $1',
    [id],
  )
  return rows[0]?.remaining as number
}

interface Tally {
  spent: number
  successes: number
  exceeded: number
  other: string[]
}

/** `CALLERS` callers at once, each sending `attempts` verifies round-robin over the replicas. */
async function hammer(token: string, attempts: number, costOf: (caller: number, i: number) => number) {
  const tally: Tally = { spent: 0, successes: 0, exceeded: 0, other: [] }
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, caller) => {
      for (let i = 0; i < attempts; i++) {
        const cost = costOf(caller, i)
        const reply = await at(caller + i).mutation('token.verify', { token, cost })
        const result = reply.body?.result?.data
        if (reply.status === 200 && result.valid) {
          tally.successes++
          tally.spent += cost
        } else if (reply.status === 200 && result.reason === 'USAGE_EXCEEDED') tally.exceeded++
        else tally.other.push(`${reply.status} ${JSON.stringify(reply.body)}`)
      }
    }),
  )
  return tally
}

describe('usage credits on three replicas', () => {
  it('never admit more than the credits under 60 concurrent callers, and admit at least 99 %', async () => {
    const key = await issueWithCredits(1000)
    const tally = await hammer(key.token, 30, () => 1)
    process.stdout.write(
      `credits 1000, 3 replicas, ${CALLERS} callers: ${tally.successes} successes, ${tally.exceeded} refused\n`,
    )
    expect(tally.other).toEqual([])
    expect(tally.successes).toBeLessThanOrEqual(1000)
    expect(tally.successes).toBeGreaterThanOrEqual(990)
    // Idle leases go back to Postgres: nothing is lost, nothing made up.
    await expect.poll(() => stored(key.id), { timeout: 10_000, interval: 250 }).toBe(1000 - tally.successes)
    // What is left is still spendable, to the last credit and not one more.
    let more = 0
    for (let i = 0; i < 1000 - tally.successes + 3; i++) {
      const reply = await at(i).mutation('token.verify', { token: key.token })
      if (reply.body.result.data.valid) more++
    }
    expect(tally.successes + more).toBe(1000)
  }, 120_000)

  it('never spend more than the credits with mixed costs (0 to 5) at once', async () => {
    const key = await issueWithCredits(500)
    const tally = await hammer(key.token, 15, (caller, i) => (caller * 7 + i) % 6)
    process.stdout.write(`credits 500, mixed costs: ${tally.spent} spent by ${tally.successes} successes\n`)
    expect(tally.other).toEqual([])
    expect(tally.spent).toBeLessThanOrEqual(500)
    await expect.poll(() => stored(key.id), { timeout: 10_000, interval: 250 }).toBe(500 - tally.spent)
  }, 120_000)

  it("takes back every replica's lease when the key changes (disable)", async () => {
    const key = await issueWithCredits(300)
    // Every replica leases a block of the first budget.
    for (let i = 0; i < 3; i++) expect((await at(i).mutation('token.verify', { token: key.token })).status).toBe(200)
    const disabled = await at(1).mutation('token.setDisabled', { id: key.id, disabled: true })
    expect(disabled.status).toBe(200)
    // The change event sends every replica's lease back to the pool.
    await expect.poll(() => stored(key.id), { timeout: 5_000, interval: 100 }).toBe(297)
    for (let i = 0; i < 3; i++) {
      expect((await at(i).mutation('token.verify', { token: key.token })).body.result.data).toEqual({
        valid: false,
        reason: 'DISABLED',
      })
    }
  }, 60_000)

  it('gives its unused credits back when a replica shuts down (SIGTERM)', async () => {
    const key = await issueWithCredits(1000)
    expect((await at(2).mutation('token.verify', { token: key.token })).body.result.data.remaining).toBe(999)
    // The replica holds a block on lease: Postgres has less than what is left.
    expect(await stored(key.id)).toBeLessThan(999)
    const replica = cluster.replicas[2]
    expect(await replica?.stop('SIGTERM')).toBe(0)
    expect(await stored(key.id)).toBe(999)
  }, 60_000)
})
