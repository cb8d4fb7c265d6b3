import { digestKey, generateKey } from '@tokend/keys'
import { startSmtp, type TestSmtp } from '@tokend/testing'
import { sql } from 'kysely'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMailer } from '../src/notify/mailer.ts'
import { ReminderScheduler } from '../src/reminders/reminder-scheduler.ts'
import { createUser, newAccount, startTestApp, type TestApp } from './harness.ts'

/**
 * Forgotten keys (SPEC §14): token.list's `expiringWithin` / `unusedFor` filters, and the
 * policy that warns an account's admins and then disables keys unused too long — with an
 * injected clock, a real SMTP server, and replicas ticking at once.
 */
const DAY = 86_400_000
let t: TestApp
let smtp: TestSmtp

beforeAll(async () => {
  t = await startTestApp()
  smtp = await startSmtp()
})

afterAll(async () => {
  await t?.stop()
  await smtp?.close()
})

/** A key row written directly, its dates relative to `base` (days; null = never). */
function keyRow(
  id: string,
  accountId: string,
  base: number,
  dates: { created: number; used?: number | null; expires?: number | null },
  extra: { revoked?: boolean; disabled?: boolean } = {},
) {
  const token = generateKey('tk', 'live')
  return {
    token,
    row: {
      id,
      account_id: accountId,
      digest: digestKey(token),
      start: token.slice(0, 12),
      environment: 'live' as const,
      name: id,
      role: 'manager' as const,
      scopes: [],
      created_at: new Date(base + dates.created * DAY),
      last_used_at: dates.used == null ? null : new Date(base + dates.used * DAY),
      expires_at: dates.expires == null ? null : new Date(base + dates.expires * DAY),
      revoked_at: extra.revoked ? new Date(base) : null,
      disabled: extra.disabled ?? false,
    },
  }
}

describe('token.list filters', () => {
  let accountId: string
  let admin: Awaited<ReturnType<typeof newAccount>>['admin']

  beforeAll(async () => {
    const account = await newAccount(t.operator, 'filters')
    accountId = account.accountId
    admin = account.admin
    const now = Date.now()
    await t.app.deps.db
      .insertInto('access_keys')
      .values(
        [
          keyRow('tok_f_expires_10', accountId, now, { created: -5, used: -1, expires: 10 }),
          keyRow('tok_f_expires_40', accountId, now, { created: -5, used: -1, expires: 40 }),
          keyRow('tok_f_expired', accountId, now, { created: -50, used: -45, expires: -1 }),
          keyRow('tok_f_idle_100', accountId, now, { created: -200, used: -100 }),
          keyRow('tok_f_never_used_120', accountId, now, { created: -120, used: null }),
          keyRow('tok_f_never_used_3', accountId, now, { created: -3, used: null }),
          keyRow('tok_f_idle_100_expires_20', accountId, now, { created: -300, used: -100, expires: 20 }),
        ].map((key) => key.row),
      )
      .execute()
  })

  const ids = (reply: { status: number; body: any }) => {
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    const items = reply.body.result?.data.items ?? reply.body.items
    return (items as Array<{ id: string }>).map((item) => item.id).filter((id) => id.startsWith('tok_f_'))
  }

  it('expiringWithin: keys not yet expired that expire within N days', async () => {
    expect(ids(await admin.query('token.list', { expiringWithin: 30 })).sort()).toEqual([
      'tok_f_expires_10',
      'tok_f_idle_100_expires_20',
    ])
    expect(ids(await admin.query('token.list', { expiringWithin: 5 }))).toEqual([])
  })

  it('unusedFor: keys last used, or never used and created, at least N days ago', async () => {
    expect(ids(await admin.query('token.list', { unusedFor: 90 })).sort()).toEqual([
      'tok_f_idle_100',
      'tok_f_idle_100_expires_20',
      'tok_f_never_used_120',
    ])
    expect(ids(await admin.query('token.list', { unusedFor: 110 }))).toEqual(['tok_f_never_used_120'])
  })

  it('combine with each other and with status, over tRPC and REST', async () => {
    expect(ids(await admin.query('token.list', { expiringWithin: 30, unusedFor: 90 }))).toEqual([
      'tok_f_idle_100_expires_20',
    ])
    expect(ids(await admin.query('token.list', { unusedFor: 30, status: 'expired' }))).toEqual(['tok_f_expired'])
    const rest = await admin.send<any>('/api/v1/tokens?expiringWithin=30&unusedFor=90', { method: 'GET' })
    expect(ids(rest)).toEqual(['tok_f_idle_100_expires_20'])
  })

  it('page through the filtered keys only', async () => {
    const first = await admin.query('token.list', { unusedFor: 90, limit: 2 })
    expect(ids(first)).toHaveLength(2)
    const second = await admin.query('token.list', {
      unusedFor: 90,
      limit: 2,
      cursor: first.body.result.data.nextCursor,
    })
    expect(ids(second)).toHaveLength(1)
    expect(second.body.result.data.nextCursor).toBeNull()
  })

  it('refuse days outside 1..36500 with 400 invalid_input', async () => {
    for (const bad of [0, -1, 36_501, 1.5, '30', '30d', null]) {
      for (const field of ['expiringWithin', 'unusedFor']) {
        const reply = await admin.query('token.list', { [field]: bad })
        expect(reply.status, `${field}=${bad}`).toBe(400)
        expect(reply.body.error.data.reason).toBe('invalid_input')
      }
    }
    for (const query of ['expiringWithin=0', 'unusedFor=36501', 'unusedFor=90d', 'expiringWithin=']) {
      const reply = await admin.send<any>(`/api/v1/tokens?${query}`, { method: 'GET' })
      expect(reply.status, query).toBe(400)
      expect(reply.body.reason).toBe('invalid_input')
    }
    expect(ids(await admin.query('token.list', { unusedFor: 36_500 }))).toEqual([])
  })

  it("stay within the caller's account", async () => {
    const other = await newAccount(t.operator, 'other')
    expect(ids(await other.admin.query('token.list', { unusedFor: 1 }))).toEqual([])
    const reply = await other.admin.query('token.list', { unusedFor: 1, accountId })
    expect(reply.status).toBe(403)
  })
})

describe('TOKEND_DISABLE_UNUSED_AFTER', () => {
  const POLICY = { afterDays: 90, warningDays: 7 }

  function scheduler(now: () => number, recipients?: (db: unknown, accountId: string) => Promise<string[]>) {
    return new ReminderScheduler({
      db: t.app.deps.db,
      logger: pino({ level: 'silent' }),
      mailer: createMailer({ smtpUrl: smtp.url, from: 'tokend <tokend@test>', logger: pino({ level: 'silent' }) }),
      intervalMs: 60_000,
      now: () => new Date(now()),
      ...(recipients && { recipients }),
      unused: { policy: POLICY, changes: t.app.deps },
    })
  }

  // Verify records a use, which would restart the idle period: only read at the end of a test.
  const verify = async (token: string) => (await t.operator.mutation('token.verify', { token })).body.result.data
  const isDisabled = async (id: string) =>
    (await t.app.deps.db.selectFrom('access_keys').select('disabled').where('id', '=', id).executeTakeFirstOrThrow())
      .disabled

  it('warns the admins first, disables a week later, once, audited; a key used meanwhile is spared', async () => {
    const { accountId, admin } = await newAccount(t.operator, 'forgetful')
    const person = await createUser(admin, { role: 'admin' })
    const email = `${person.username}@example.com`
    const start = Date.now()
    const keys = {
      idle100: keyRow('tok_u_idle100', accountId, start, { created: -300, used: -100 }),
      idle85: keyRow('tok_u_idle85', accountId, start, { created: -85, used: null }),
      usedLater: keyRow('tok_u_used_later', accountId, start, { created: -200, used: -95 }),
      busy: keyRow('tok_u_busy', accountId, start, { created: -400, used: -1 }),
      revoked: keyRow('tok_u_revoked', accountId, start, { created: -400, used: -300 }, { revoked: true }),
      expired: keyRow('tok_u_expired', accountId, start, { created: -400, used: -300, expires: -1 }),
    }
    await t.app.deps.db
      .insertInto('access_keys')
      .values(Object.values(keys).map((key) => key.row))
      .execute()
    const mine = (text: string) => text.includes('tok_u_')
    const mailsBefore = smtp.received.length

    let now = start
    const days: Record<string, { warned?: number; disabled?: number }> = {}
    const mails: Array<{ day: number; subject: string; to: string[]; body: string }> = []
    for (let hour = 0; hour <= 20 * 24; hour += 12) {
      now = start + hour * 3_600_000
      const day = hour / 24
      // A replica restarts now and then: each round a new scheduler, as after a restart.
      const before = smtp.received.length
      await scheduler(() => now).round()
      for (const mail of smtp.received.slice(before).filter((m) => mine(m.body))) {
        mails.push({ day, subject: mail.subject, to: mail.to, body: mail.body })
      }
      // The key used on day 3 (after its warning on day 0) starts a new idle period.
      if (day === 3) {
        await t.app.deps.db
          .updateTable('access_keys')
          .set({ last_used_at: new Date(now) })
          .where('id', '=', 'tok_u_used_later')
          .execute()
      }
      for (const [name, key] of Object.entries(keys)) {
        days[name] ??= {}
        if ((await isDisabled(key.row.id)) && days[name].disabled === undefined) days[name].disabled = day
      }
    }
    expect(smtp.received.length).toBeGreaterThan(mailsBefore)

    // Warnings: every key idle 83 days or more (90 - 7), in one mail to the account's admins, once.
    const warnings = mails.filter((mail) => mail.subject.includes('will be disabled'))
    expect(warnings.map((mail) => mail.day)).toEqual([0])
    for (const id of ['tok_u_idle100', 'tok_u_used_later', 'tok_u_idle85']) expect(warnings[0]?.body).toContain(id)
    for (const id of ['tok_u_busy', 'tok_u_revoked', 'tok_u_expired']) expect(warnings[0]?.body).not.toContain(id)
    expect(warnings[0]?.to).toContain(email)
    // Disables: a week after each warning, never before the key is 90 days idle; never the key used meanwhile.
    const disabledOn = Object.fromEntries(Object.entries(days).map(([name, seen]) => [name, seen.disabled ?? null]))
    expect(disabledOn).toEqual({
      idle100: 7,
      idle85: 7,
      usedLater: null,
      busy: null,
      revoked: null,
      expired: null,
    })
    const notices = mails.filter((mail) => mail.subject.includes('disabled') && !mail.subject.includes('will be'))
    expect(notices.map((mail) => mail.day)).toEqual([7])
    expect(notices[0]?.body).toContain('tok_u_idle100')
    expect(notices[0]?.body).toContain('tok_u_idle85')
    expect(notices[0]?.body).not.toContain('tok_u_used_later')

    const rows = await t.app.deps.db
      .selectFrom('access_keys')
      .select(['id', 'disabled'])
      .where('id', 'like', 'tok_u_%')
      .orderBy('id')
      .execute()
    expect(rows.filter((row) => row.disabled).map((row) => row.id)).toEqual(['tok_u_idle100', 'tok_u_idle85'])
    expect(await verify(keys.idle85.token)).toEqual({ valid: false, reason: 'DISABLED' })
    const audit = await admin.query('audit.list', { targetId: 'tok_u_idle100' })
    expect(audit.body.result.data.items).toEqual([
      expect.objectContaining({
        action: 'token.disable',
        actorType: 'system',
        data: expect.objectContaining({ reason: 'unused', afterDays: 90 }),
      }),
      expect.objectContaining({
        action: 'token.unused_warning',
        actorType: 'system',
        data: expect.objectContaining({ unusedSince: expect.any(String), disableFrom: expect.any(String) }),
      }),
    ])

    // An admin enables it again: it stays enabled until it is used and forgotten once more.
    expect((await admin.mutation('token.setDisabled', { id: 'tok_u_idle100', disabled: false })).status).toBe(200)
    now += 30 * DAY
    await scheduler(() => now).round()
    expect(await verify(keys.idle100.token)).toMatchObject({ valid: true })
  })

  it('warns and disables once when three replicas tick at the same moment', async () => {
    const { accountId } = await newAccount(t.operator, 'raced')
    const start = Date.now()
    const key = keyRow('tok_u_race', accountId, start, { created: -400, used: -200 })
    await t.app.deps.db.insertInto('access_keys').values(key.row).execute()
    const sent: string[] = []
    const recipients = async () => {
      sent.push('mail')
      return ['race@example.com']
    }
    let now = start
    const replicas = [0, 1, 2].map(() => scheduler(() => now, recipients))
    const first = await Promise.all(replicas.map((replica) => replica.round()))
    expect(first.reduce((sum, round) => sum + (round.unused?.warned ?? 0), 0)).toBe(1)
    now = start + 8 * DAY
    const second = await Promise.all(replicas.map((replica) => replica.round()))
    expect(second.reduce((sum, round) => sum + (round.unused?.disabled ?? 0), 0)).toBe(1)
    now = start + 9 * DAY
    const third = await Promise.all(replicas.map((replica) => replica.round()))
    expect(third.every((round) => round.unused?.warned === 0 && round.unused?.disabled === 0)).toBe(true)
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from audit_events where target_id = 'tok_u_race' and action = 'token.disable'
    `.execute(t.app.deps.db)
    expect(rows[0]?.n).toBe(1)
    expect(sent).toHaveLength(2) // one warning, one notice
    expect(await verify(key.token)).toEqual({ valid: false, reason: 'DISABLED' })
  })

  it('never disables without a warning that was sent: a failed mail is retried first', async () => {
    const { accountId } = await newAccount(t.operator, 'unreachable')
    const start = Date.now()
    const key = keyRow('tok_u_nomail', accountId, start, { created: -400, used: -200 })
    await t.app.deps.db.insertInto('access_keys').values(key.row).execute()
    let failing = true
    let now = start
    const replica = new ReminderScheduler({
      db: t.app.deps.db,
      logger: pino({ level: 'silent' }),
      intervalMs: 60_000,
      now: () => new Date(now),
      recipients: async () => ['x@example.com'],
      mailer: {
        async send(mail) {
          if (failing && mail.text.includes('tok_u_nomail')) throw new Error('smtp down')
        },
      },
      unused: { policy: POLICY, changes: t.app.deps },
    })
    for (let day = 0; day <= 10; day++) {
      now = start + day * DAY
      await replica.round()
    }
    expect(await isDisabled('tok_u_nomail')).toBe(false)
    failing = false
    await replica.round() // the warning goes out now (day 10)
    now += 6 * DAY
    await replica.round()
    expect(await isDisabled('tok_u_nomail')).toBe(false)
    now += 1 * DAY
    await replica.round()
    expect(await verify(key.token)).toEqual({ valid: false, reason: 'DISABLED' })
  })
})

describe('the policy as configured', () => {
  it('runs in a tokend started with TOKEND_DISABLE_UNUSED_AFTER: the mail, then the disable, refused at once', async () => {
    const app = await startTestApp({
      TOKEND_DISABLE_UNUSED_AFTER: '90d',
      TOKEND_REMINDER_INTERVAL_MS: '1s',
      SMTP_URL: smtp.url,
    })
    try {
      const { accountId, admin } = await newAccount(app.operator, 'configured')
      const person = await createUser(admin, { role: 'admin' })
      const key = keyRow('tok_u_configured', accountId, Date.now(), { created: -300, used: -200 })
      await app.app.deps.db.insertInto('access_keys').values(key.row).execute()
      // Cached as valid first: the disable must reach the cache. (This verify is a use, recorded within 5 s —
      // so the row's last use is pinned back again below, as if the verify had happened long ago.)
      const verify = async () => (await app.operator.mutation('token.verify', { token: key.token })).body.result.data
      expect(await verify()).toMatchObject({ valid: true })
      await new Promise((resolve) => setTimeout(resolve, 5_500))
      await app.app.deps.db
        .updateTable('access_keys')
        .set({ last_used_at: key.row.last_used_at })
        .where('id', '=', 'tok_u_configured')
        .execute()
      await expect
        .poll(() => smtp.received.some((mail) => mail.body.includes('tok_u_configured')), { timeout: 10_000 })
        .toBe(true)
      expect(smtp.received.find((mail) => mail.body.includes('tok_u_configured'))?.to).toContain(
        `${person.username}@example.com`,
      )
      // Warned, not yet disabled (read from the table: a verify would count as a use).
      const row = await app.app.deps.db
        .selectFrom('access_keys')
        .select('disabled')
        .where('id', '=', 'tok_u_configured')
        .executeTakeFirstOrThrow()
      expect(row.disabled).toBe(false)
      // A week passes (the warning is moved back rather than the clock forward).
      await app.app.deps.db
        .updateTable('unused_key_notices')
        .set({ warned_at: new Date(Date.now() - 8 * DAY) })
        .where('key_id', '=', 'tok_u_configured')
        .execute()
      await expect.poll(verify, { timeout: 10_000 }).toEqual({ valid: false, reason: 'DISABLED' })
    } finally {
      await app.stop()
    }
  })
})
