import { digestKey, generateKey } from '@tokend/keys'
import {
  Caller,
  query,
  type Replicas,
  type RunningPostgres,
  startEmbeddedPostgres,
  startReplicas,
} from '@tokend/testing'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * SPEC §6 across real replica processes sharing one Postgres — an embedded cluster
 * of this file's own, so the last test can stop and restart it.
 */
let postgres: RunningPostgres & { destroy(): Promise<void> }
let cluster: Replicas
let callers: Caller[]

beforeAll(async () => {
  postgres = await startEmbeddedPostgres()
  cluster = await startReplicas(postgres.url, 3, {
    TOKEND_MAX_ACTIVE_KEYS: '100000',
    TOKEND_KEY_CREATIONS_PER_MINUTE: '100000',
  })
  callers = cluster.replicas.map((replica) => new Caller(replica.url, cluster.bootstrapKey))
}, 120_000)

afterAll(async () => {
  await cluster?.stop()
  await postgres?.destroy()
})

const sql = <T extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  query<T>(cluster.databaseUrl, text, values)

const at = (i: number) => callers[i] as Caller

async function verify(caller: Caller, token: string): Promise<{ status: number; valid?: boolean; reason?: string }> {
  const reply = await caller.mutation('token.verify', { token })
  return { status: reply.status, ...reply.body?.result?.data }
}

async function issueKey(accountId?: string, role: 'admin' | 'manager' = 'manager') {
  const reply = await at(0).mutation('token.issue', { name: 'replicated', environment: 'live', accountId, role })
  return reply.body.result.data as { token: string; id: string }
}

/** Verifies until `done` says so; returns the ms it took, or throws after `limitMs`. */
async function until(
  caller: Caller,
  token: string,
  done: (result: Awaited<ReturnType<typeof verify>>) => boolean,
  limitMs: number,
) {
  const started = performance.now()
  for (;;) {
    const result = await verify(caller, token)
    const elapsed = performance.now() - started
    if (done(result)) return elapsed
    if (elapsed > limitMs) throw new Error(`not done after ${limitMs} ms: ${JSON.stringify(result)}`)
  }
}

const rejected = (result: { status: number; valid?: boolean }) => result.status !== 200 || result.valid === false

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

describe('three replicas on one Postgres', () => {
  it('migrated and bootstrapped exactly once when all three started at once', async () => {
    const banners = cluster.replicas.filter((replica) => replica.output().includes(cluster.bootstrapKey))
    expect(banners).toHaveLength(1)
    const migrations = await sql<{ name: string }>('select name from kysely_migration')
    expect(migrations.map((m) => m.name)).toContain('2026-11-23T0800_core')
    expect(new Set(migrations.map((m) => m.name)).size).toBe(migrations.length)
    expect(await sql('select id from signing_keys')).toHaveLength(1)
    expect(await sql('select id from accounts where operator')).toHaveLength(1)
    expect(await sql("select id from audit_events where action = 'account.bootstrap'")).toHaveLength(1)
    for (const caller of callers) expect((await caller.query('me')).status).toBe(200)
  })

  it('reports the change channel in /readyz', async () => {
    for (const replica of cluster.replicas) {
      const ready = await fetch(`${replica.url}/readyz`).then((response) => response.json())
      expect(ready).toEqual({ status: 'ok', database: 'ok', changes: 'subscribed' })
    }
  })

  it('propagates 200 revocations to every replica within the bound', async () => {
    const lags: number[] = []
    for (let round = 0; round < 200; round++) {
      const key = await issueKey()
      for (const caller of callers) expect((await verify(caller, key.token)).valid).toBe(true) // cached everywhere
      const serving = round % 3
      const revoke = await at(serving).mutation('token.revoke', { id: key.id })
      expect(revoke.status).toBe(200)
      // The serving replica rejects as soon as the call returns: no waiting at all.
      expect(await verify(at(serving), key.token)).toMatchObject({ valid: false, reason: 'REVOKED' })
      const others = [0, 1, 2].filter((i) => i !== serving)
      lags.push(...(await Promise.all(others.map((i) => until(at(i), key.token, rejected, 5_000)))))
    }
    lags.sort((a, b) => a - b)
    const report = {
      revocations: 200,
      samples: lags.length,
      p50: percentile(lags, 50),
      p99: percentile(lags, 99),
      max: lags.at(-1),
    }
    process.stdout.write(
      `propagation (ms, revoke returned → rejected on another replica): ${JSON.stringify(report, (_, v) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v))}\n`,
    )
    expect(report.max).toBeLessThan(5_000) // the fail-safe bound; the figures are reported, P6 benchmarks them
  }, 120_000)

  it('loses no revocation when the listening connections are killed', async () => {
    const key = await issueKey()
    for (const caller of callers) expect((await verify(caller, key.token)).valid).toBe(true)
    const killed = await sql<{ pid: number }>(
      "select pg_terminate_backend(pid) as pid from pg_stat_activity where application_name = 'tokend-listener'",
    )
    expect(killed).toHaveLength(3)
    // Revoked during the gap: no replica is listening when this NOTIFY is sent.
    expect((await at(1).mutation('token.revoke', { id: key.id })).status).toBe(200)
    for (const caller of callers) await until(caller, key.token, rejected, 5_000)
    // Once every replica has re-subscribed, the key must still never be accepted.
    await waitForChannels()
    for (let i = 0; i < 30; i++) {
      for (const caller of callers)
        expect(await verify(caller, key.token)).toMatchObject({ valid: false, reason: 'REVOKED' })
    }
  }, 30_000)

  it('treats a half-open listening connection as lost within 5 s', async () => {
    const key = await issueKey()
    for (const caller of callers) expect((await verify(caller, key.token)).valid).toBe(true)
    // A stopped backend keeps its TCP connection open but never answers: half-open.
    const backends = await sql<{ pid: number }>(
      "select pid from pg_stat_activity where application_name = 'tokend-listener'",
    )
    for (const { pid } of backends) process.kill(pid, 'SIGSTOP')
    try {
      // Revoked while every listener is deaf; only the heartbeat can notice.
      expect((await at(0).mutation('token.revoke', { id: key.id })).status).toBe(200)
      const lags = await Promise.all(callers.map((caller) => until(caller, key.token, rejected, 5_000)))
      process.stdout.write(`half-open detection: rejected after ${lags.map((ms) => Math.round(ms)).join(', ')} ms\n`)
    } finally {
      for (const { pid } of backends) process.kill(pid, 'SIGCONT')
    }
    await waitForChannels()
    for (const caller of callers) expect(await verify(caller, key.token)).toMatchObject({ reason: 'REVOKED' })
  }, 30_000)

  it('applies a change to 10 000 keys of one account on every replica with one small event', async () => {
    const account = (await at(0).mutation('account.create', { name: 'bulk', plan: 'paid' })).body.result.data
    const tokens = Array.from({ length: 10_000 }, () => generateKey('tk', 'live'))
    const ids = tokens.map((_, i) => `tok_bulk${String(i).padStart(5, '0')}`)
    await sql(
      `insert into access_keys (id, account_id, digest, start, environment, name, role, scopes)
       select id, $1, digest, 'tk_live_bulk', 'live', 'bulk', 'manager', '{}'
       from unnest($2::text[], $3::text[]) as t(id, digest)`,
      [account.id, ids, tokens.map(digestKey)],
    )
    const sample = tokens.filter((_, i) => i % 50 === 0) // 200 keys, cached on every replica
    for (const caller of callers) {
      for (const token of sample) expect((await verify(caller, token)).valid).toBe(true)
    }
    const suspended = await at(2).mutation('account.setStatus', { accountId: account.id, status: 'suspended' })
    expect(suspended.body.result.data.status).toBe('suspended')
    for (const caller of callers) {
      for (const token of sample) await until(caller, token, (r) => r.reason === 'ACCOUNT_SUSPENDED', 5_000)
      expect(await verify(caller, tokens[7] as string)).toMatchObject({ reason: 'ACCOUNT_SUSPENDED' })
    }
    await at(1).mutation('account.setStatus', { accountId: account.id, status: 'active' })
    for (const caller of callers) await until(caller, sample[3] as string, (r) => r.valid === true, 5_000)
  }, 60_000)

  it("rejects a suspended account's keys, sessions and direct tokens on every replica, and a logout everywhere", async () => {
    const account = (await at(0).mutation('account.create', { name: 'people', plan: 'paid' })).body.result.data
    const admin = at(0).as((await issueKey(account.id, 'admin')).token)
    const password = 'correct horse battery staple'
    const username = `person${Date.now().toString(36)}`
    const created = await admin.mutation('user.create', { username, email: 'p@example.com', password, role: 'admin' })
    expect(created.status).toBe(200)
    const signIn = async (caller: Caller) =>
      (await caller.as(undefined).mutation('auth.login', { username, password })).body.result.data.token as string
    const session = await signIn(at(1))
    const leaving = await signIn(at(2))
    const key = (await issueKey(account.id)).token
    const direct = (await admin.mutation('direct.create', { resourceType: 'ai', resourceId: 'agent-1' })).body.result
      .data
    const booted = (await at(2).as(undefined).mutation('auth.boot', { directHash: direct.hash })).body.result.data.token
    const credentials = { key, session, direct: booted }
    for (const caller of callers) {
      for (const token of [...Object.values(credentials), leaving])
        expect((await verify(caller, token)).valid).toBe(true)
    }

    // Logout on one replica: the session is refused on all of them.
    const logout = await at(0).as(leaving).mutation('auth.logout')
    expect(logout.status).toBe(200)
    expect(await verify(at(0), leaving)).toMatchObject({ valid: false, reason: 'REVOKED' })
    for (const caller of callers) await until(caller, leaving, (r) => r.reason === 'REVOKED', 5_000)

    // Suspension: one account event rejects every kind of credential everywhere.
    await at(2).mutation('account.setStatus', { accountId: account.id, status: 'suspended' })
    for (const caller of callers) {
      for (const token of Object.values(credentials)) {
        await until(caller, token, (r) => r.reason === 'ACCOUNT_SUSPENDED', 5_000)
      }
      expect((await caller.as(session).query('me')).status).toBe(401)
    }
    expect((await at(1).as(undefined).mutation('auth.login', { username, password })).status).toBe(403)
    await at(0).mutation('account.setStatus', { accountId: account.id, status: 'active' })
    for (const caller of callers) {
      for (const token of Object.values(credentials)) await until(caller, token, (r) => r.valid === true, 5_000)
    }
  }, 60_000)

  it('fails closed while Postgres is down and recovers by itself', async () => {
    const cached = await issueKey()
    for (const caller of callers) expect((await verify(caller, cached.token)).valid).toBe(true)
    const [{ count: before }] = (await sql<{ count: number }>('select count(*)::int as count from access_keys')) as [
      { count: number },
    ]
    await postgres.stop()
    try {
      for (const caller of callers) {
        // A cached key: once the channel is down nothing is answered from memory.
        await until(caller, cached.token, (r) => r.status === 503, 5_000)
        const cold = await caller.mutation('token.verify', { token: generateKey('tk', 'live') })
        expect(cold.status).toBe(503)
        expect(cold.body.error.data.reason).toBe('unavailable')
        const issued = await caller.mutation('token.issue', { name: 'during outage', environment: 'live' })
        expect(issued.status).toBe(503)
        const ready = await fetch(`${caller.url}/readyz`)
        expect(ready.status).toBe(503)
      }
    } finally {
      await postgres.start()
    }
    await waitForChannels(15_000)
    for (const caller of callers) {
      await until(caller, cached.token, (r) => r.valid === true, 10_000)
      expect((await caller.mutation('token.issue', { name: 'after outage', environment: 'live' })).status).toBe(200)
    }
    const [{ count: after }] = (await sql<{ count: number }>(
      "select count(*)::int as count from access_keys where name <> 'after outage'",
    )) as [{ count: number }]
    expect(after).toBe(before) // nothing written during the outage
  }, 60_000)
})

async function waitForChannels(limitMs = 10_000): Promise<void> {
  const started = Date.now()
  for (const replica of cluster.replicas) {
    for (;;) {
      const ready = (await fetch(`${replica.url}/readyz`)
        .then((response) => response.json())
        .catch(() => ({}))) as { changes?: string; database?: string }
      if (ready.changes === 'subscribed' && ready.database === 'ok') break
      if (Date.now() - started > limitMs) throw new Error(`replica ${replica.url} did not re-subscribe`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
