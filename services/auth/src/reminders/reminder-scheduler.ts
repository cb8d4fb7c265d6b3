import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { ChangeTargets } from '../changes/change-events.ts'
import type { Db } from '../db/database.ts'
import { groupBy } from '../group-by.ts'
import type { Mailer } from '../notify/mailer.ts'
import { accountAdminEmails } from '../notify/recipients.ts'
import { type UnusedPolicy, type UnusedRound, unusedRound } from './unused-keys.ts'

/** Days before expiry at which an account's admins hear about a key (SPEC §9). */
export const THRESHOLDS = [30, 7] as const

const LOCK = 0x70_6b_64_02
/** A claim whose mail was never marked sent (the sender died) is tried again after this. */
const STALE_CLAIM_MS = 10 * 60_000

interface Due {
  key_id: string
  threshold_days: number
  account_id: string
  name: string
  start: string
  expires_at: Date
}

export interface ReminderOptions {
  db: Db
  mailer: Mailer
  logger: Logger
  intervalMs: number
  /** The clock; tests move it through simulated weeks. */
  now?: () => Date
  /** Who hears about an account's keys: its admins. */
  recipients?: (db: Db, accountId: string) => Promise<string[]>
  /**
   * The forgotten-key policy (`TOKEND_DISABLE_UNUSED_AFTER`, unused-keys.ts), off when
   * absent; `changes` are this replica's caches, which a disable invalidates at once.
   */
  unused?: { policy: UnusedPolicy; changes: ChangeTargets } | undefined
}

/** What one round did. `unused` is null when the forgotten-key policy is off. */
export interface Round {
  reminders: number
  unused: UnusedRound | null
}

/**
 * Emails each account's admins 30 and 7 days before a key expires, once per key and
 * threshold across restarts and replicas.
 *
 * Every tick, whichever replica takes the advisory lock claims the reminders that
 * are due (a row per key and threshold: the primary key makes a claim happen once),
 * commits, sends, and marks them sent. A failed send releases its claim for the next
 * tick; a claim left unsent by a replica that died is retried after ten minutes. A
 * key only gets the nearest threshold it has reached, and none it was born inside of
 * (a key issued for 10 days gets the 7-day notice only). Keys without expiry never do.
 */
export class ReminderScheduler {
  readonly #options: ReminderOptions
  readonly #now: () => Date
  #timer: NodeJS.Timeout | undefined
  #running: Promise<Round> | undefined

  constructor(options: ReminderOptions) {
    this.#options = options
    this.#now = options.now ?? (() => new Date())
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#options.intervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }

  /** One round; resolves with the number of reminders sent. Never runs twice at once here. */
  async tick(): Promise<number> {
    return (await this.round()).reminders
  }

  /** One round of expiry reminders, then of the forgotten-key policy when it is on. */
  round(): Promise<Round> {
    this.#running ??= this.#round().finally(() => (this.#running = undefined))
    return this.#running
  }

  async #round(): Promise<Round> {
    const now = this.#now()
    const reminders = await this.#reminders(now)
    const { unused, db, mailer, logger } = this.#options
    if (!unused) return { reminders, unused: null }
    const recipients = this.#options.recipients ?? accountAdminEmails
    const round = await unusedRound({ db, mailer, logger, changes: unused.changes, recipients }, unused.policy, now)
    return { reminders, unused: round }
  }

  async #reminders(now: Date): Promise<number> {
    const { db, logger } = this.#options
    let due: Due[]
    try {
      due = await this.#claim(db, now)
    } catch (error) {
      logger.warn({ err: error }, 'expiry reminders skipped this round')
      return 0
    }
    let sent = 0
    for (const [accountId, keys] of groupBy(due, (reminder) => reminder.account_id)) {
      try {
        await this.#send(accountId, keys, now)
        await db
          .updateTable('expiry_reminders')
          .set({ sent_at: now })
          .where(({ eb, refTuple, tuple }) =>
            eb(
              refTuple('key_id', 'threshold_days'),
              'in',
              keys.map((key) => tuple(key.key_id, key.threshold_days)),
            ),
          )
          .execute()
        sent += keys.length
      } catch (error) {
        logger.error({ err: error, accountId }, 'expiry reminder not sent; will retry')
        await db
          .deleteFrom('expiry_reminders')
          .where('sent_at', 'is', null)
          .where(
            'key_id',
            'in',
            keys.map((key) => key.key_id),
          )
          .execute()
          .catch(() => {})
      }
    }
    return sent
  }

  /** Claims what is due under the lock, so replicas never race for the same round. */
  #claim(db: Db, now: Date): Promise<Due[]> {
    return db.transaction().execute(async (trx) => {
      const { rows: locked } = await sql<{
        locked: boolean
      }>`select pg_try_advisory_xact_lock(${LOCK}) as locked`.execute(trx)
      if (!locked[0]?.locked) return []
      const stale = new Date(now.getTime() - STALE_CLAIM_MS)
      await trx.deleteFrom('expiry_reminders').where('sent_at', 'is', null).where('claimed_at', '<', stale).execute()
      const { rows } = await sql<Due>`
        with due as (
          select k.id as key_id, t.days as threshold_days
          from access_keys k
          cross join (values ${sql.join(THRESHOLDS.map((days) => sql`(${days}::int)`))}) as t(days)
          join accounts a on a.id = k.account_id and a.status = 'active'
          where k.revoked_at is null
            and k.expires_at > ${now}
            and k.expires_at <= ${now}::timestamptz + t.days * interval '1 day'
            and k.created_at < k.expires_at - t.days * interval '1 day'
            -- only the nearest threshold reached: no 30-day notice for a key 5 days from expiry
            and not exists (
              select 1 from (values ${sql.join(THRESHOLDS.map((days) => sql`(${days}::int)`))}) as n(days)
              where n.days < t.days and k.expires_at <= ${now}::timestamptz + n.days * interval '1 day'
            )
        ),
        claimed as (
          insert into expiry_reminders (key_id, threshold_days, claimed_at)
          select key_id, threshold_days, ${now} from due
          on conflict do nothing
          returning key_id, threshold_days
        )
        select c.key_id, c.threshold_days, k.account_id, k.name, k.start, k.expires_at
        from claimed c join access_keys k on k.id = c.key_id
        order by k.account_id, k.expires_at
      `.execute(trx)
      return rows
    })
  }

  async #send(accountId: string, keys: Due[], now: Date): Promise<void> {
    const to = await (this.#options.recipients ?? accountAdminEmails)(this.#options.db, accountId)
    const lines = keys.map((key) => {
      const days = Math.max(1, Math.ceil((key.expires_at.getTime() - now.getTime()) / 86_400_000))
      return `  ${key.start}…  "${key.name}"  (${key.key_id}) expires ${key.expires_at.toISOString()}, in ${days} day(s)`
    })
    await this.#options.mailer.send({
      to,
      subject: `tokend: ${keys.length} access key(s) expire soon`,
      text: [
        'These access keys of your account expire soon:',
        '',
        ...lines,
        '',
        'Rotate each one (token.rotate) and deploy the new key before the old one expires.',
      ].join('\n'),
    })
  }
}
