import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, startTestApp, type TestApp } from './harness.ts'

let t: TestApp

beforeAll(async () => {
  t = await startTestApp()
})

afterAll(() => t?.stop())

/** Reads one sample from Prometheus' text format. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || l.startsWith(`${name}${labels}{`))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}

describe('/metrics', () => {
  it('is scraped without credentials and counts verifies, the cache, the channel and the pool', async () => {
    const key = await issue(t.operator)
    for (let i = 0; i < 3; i++) await t.operator.mutation('token.verify', { token: key.token })
    await t.operator.mutation('token.verify', { token: 'nope' })
    await t.operator.mutation('token.revoke', { id: key.id })
    await t.operator.mutation('token.verify', { token: key.token })
    await new Promise((resolve) => setTimeout(resolve, 100)) // the NOTIFY comes back to this replica too

    const response = await fetch(`${t.url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await response.text()
    expect(sample(text, 'tokend_verifies_total', '{result="valid",kind="access_key"}')).toBe(3)
    expect(sample(text, 'tokend_verifies_total', '{result="MALFORMED",kind="none"}')).toBe(1)
    expect(sample(text, 'tokend_verifies_total', '{result="REVOKED",kind="none"}')).toBe(1)
    expect(sample(text, 'tokend_verify_duration_seconds_count')).toBe(5)
    expect(sample(text, 'tokend_cache_hits_total')).toBeGreaterThan(0)
    expect(sample(text, 'tokend_cache_loads_total')).toBeGreaterThan(0)
    expect(sample(text, 'tokend_cache_entries')).toBeGreaterThan(0)
    expect(sample(text, 'tokend_cache_evictions_total')).toBeGreaterThan(0)
    expect(sample(text, 'tokend_change_channel_up')).toBe(1)
    expect(sample(text, 'tokend_invalidation_lag_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'tokend_db_pool_connections')).toBeGreaterThan(0)
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeDefined()
    expect(text).not.toContain(key.token.slice(12))
  })
})
