import { digestKey, generateKey } from '@tokend/keys'
import { startSmtp, type TestSmtp } from '@tokend/testing'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMailer } from '../src/notify/mailer.ts'
import { ReminderScheduler } from '../src/reminders/reminder-scheduler.ts'
import { startTestApp, type TestApp } from './harness.ts'

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

describe('expiry reminders', () => {
  it('mails each key once per threshold over 40 simulated days, across a restart', async () => {
    const db = t.app.deps.db
    const start = Date.now()
    const accounts = { a: 'acc_remind_a', b: 'acc_remind_b' }
    await db
      .insertInto('accounts')
      .values([
        { id: accounts.a, name: 'a', plan: 'paid' },
        { id: accounts.b, name: 'b', plan: 'paid' },
      ])
      .execute()
    const admins: Record<string, string[]> = {
      [accounts.a]: ['alice@a.example', 'ann@a.example'],
      [accounts.b]: ['bob@b.example'],
    }
    const key = (id: string, accountId: string, expiresInDays: number | null, revoked = false) => ({
      id,
      account_id: accountId,
      digest: digestKey(generateKey('tk', 'live')),
      start: `tk_live_${id.slice(-4)}`,
      environment: 'live' as const,
      name: id,
      role: 'manager' as const,
      scopes: [],
      created_at: new Date(start),
      expires_at: expiresInDays === null ? null : new Date(start + expiresInDays * DAY),
      revoked_at: revoked ? new Date(start) : null,
    })
    await db
      .insertInto('access_keys')
      .values([
        key('tok_r_35days', accounts.a, 35), // 30-day notice on day 5, 7-day notice on day 28
        key('tok_r_90days', accounts.a, 90), // nothing within 40 days
        key('tok_r_20days', accounts.b, 20), // born inside 30 days: only the 7-day notice, day 13
        key('tok_r_never', accounts.b, null), // never expires: never mailed
        key('tok_r_revoked', accounts.b, 35, true), // revoked: never mailed
      ])
      .execute()

    let now = start
    const scheduler = () =>
      new ReminderScheduler({
        db,
        logger: pino({ level: 'silent' }),
        mailer: createMailer({ smtpUrl: smtp.url, from: 'tokend <tokend@test>', logger: pino({ level: 'silent' }) }),
        intervalMs: 60_000,
        now: () => new Date(now),
        recipients: async (_db, accountId) => admins[accountId] ?? [],
      })
    let current = scheduler()
    const sentOnDay: number[] = []
    for (let hour = 0; hour <= 40 * 24; hour += 6) {
      now = start + hour * 3_600_000
      if (hour === 20 * 24) current = scheduler() // a restart in the middle
      const before = smtp.received.length
      await current.tick()
      for (const _mail of smtp.received.slice(before)) sentOnDay.push(hour / 24)
    }

    const reminders = await db.selectFrom('expiry_reminders').select(['key_id', 'threshold_days', 'sent_at']).execute()
    expect(reminders.map((r) => `${r.key_id}/${r.threshold_days}`).sort()).toEqual([
      'tok_r_20days/7',
      'tok_r_35days/30',
      'tok_r_35days/7',
    ])
    expect(reminders.every((r) => r.sent_at !== null)).toBe(true)
    expect(smtp.received).toHaveLength(3)
    const to = (id: string) => smtp.received.filter((mail) => mail.text.includes(id)).map((mail) => mail.to)
    expect(to('tok_r_35days')).toEqual([admins[accounts.a], admins[accounts.a]])
    expect(to('tok_r_20days')).toEqual([admins[accounts.b]])
    expect(to('tok_r_never')).toEqual([])
    expect(to('tok_r_revoked')).toEqual([])
    expect(to('tok_r_90days')).toEqual([])
    expect(sentOnDay).toEqual([5, 13, 28])
  })

  it('sends a reminder only once when replicas tick together, and again after a failed send', async () => {
    const db = t.app.deps.db
    await db.insertInto('accounts').values({ id: 'acc_remind_c', name: 'c', plan: 'paid' }).execute()
    const now = Date.now()
    await db
      .insertInto('access_keys')
      .values({
        id: 'tok_r_race',
        account_id: 'acc_remind_c',
        digest: digestKey(generateKey('tk', 'live')),
        start: 'tk_live_race',
        environment: 'live',
        name: 'race',
        role: 'manager',
        scopes: [],
        created_at: new Date(now - 60 * DAY),
        expires_at: new Date(now + 3 * DAY),
        revoked_at: null,
      })
      .execute()
    let failures = 1
    const sent: string[][] = []
    const replica = () =>
      new ReminderScheduler({
        db,
        logger: pino({ level: 'silent' }),
        intervalMs: 60_000,
        recipients: async () => ['carol@c.example'],
        mailer: {
          async send(mail) {
            if (failures-- > 0) throw new Error('smtp down')
            sent.push(mail.to)
          },
        },
      })
    expect(await replica().tick()).toBe(0) // claimed, but the send failed: the claim is released
    const second = await Promise.all([replica().tick(), replica().tick(), replica().tick()])
    expect(second.reduce((a, b) => a + b, 0)).toBe(1)
    expect(sent).toEqual([['carol@c.example']])
    expect(await Promise.all([replica().tick(), replica().tick()])).toEqual([0, 0])
  })
})

describe('recipients', () => {
  it("are the account's admin users, not its managers nor another account's", async () => {
    const { accountAdminEmails } = await import('../src/notify/recipients.ts')
    const db = t.app.deps.db
    await db.insertInto('accounts').values({ id: 'acc_recipients', name: 'r', plan: 'paid' }).execute()
    const user = (id: string, email: string, role: 'admin' | 'manager', accountId = 'acc_recipients') => ({
      id,
      account_id: accountId,
      username: id,
      email,
      password_hash: 'x',
      role,
    })
    await db
      .insertInto('users')
      .values([
        user('usr_r1', 'zoe@r.example', 'admin'),
        user('usr_r2', 'adam@r.example', 'admin'),
        user('usr_r3', 'mia@r.example', 'manager'),
        user('usr_r4', 'other@a.example', 'admin', 'acc_remind_a'),
      ])
      .execute()
    expect(await accountAdminEmails(db, 'acc_recipients')).toEqual(['adam@r.example', 'zoe@r.example'])
  })
})
