import { sql } from 'kysely'
import type { Logger } from 'pino'
import { keepOperatorAccess } from '../accounts/operator-access.ts'
import { recordAudit } from '../audit/audit.repository.ts'
import { type ChangeTargets, changeTransaction, keyChange } from '../changes/change-events.ts'
import type { Db } from '../db/database.ts'
import { ConflictError } from '../errors.ts'
import { groupBy } from '../group-by.ts'
import type { Mailer } from '../notify/mailer.ts'
import { SYSTEM_ACTOR } from '../principal.ts'

/**
 * The forgotten-key policy (SPEC §14, `TOKEND_DISABLE_UNUSED_AFTER`): a key unused for
 * `afterDays` (never used: created that long ago) is disabled — reversibly, like
 * `token.setDisabled` — after its account's admins were mailed `warningDays` before.
 *
 * A key's idle period starts at its last use (or creation): `unused_key_notices` holds
 * one row per key and idle period, so the warning is claimed and sent once, and the
 * key disabled once, across replicas and restarts (the claim is the row's primary key,
 * as for expiry reminders; the disable is a conditional update of that row). A key used
 * after its warning starts a new idle period and is safe until it idles again; a key an
 * admin enables again stays enabled until it is used and forgotten once more.
 */
export interface UnusedPolicy {
  afterDays: number
  warningDays: number
}

const DAY_MS = 86_400_000
/** Taken by whichever replica claims this round's warnings. */
const LOCK = 0x70_6b_64_03
/** A claimed warning never marked sent (its sender died) is claimed again after this. */
const STALE_CLAIM_MS = 10 * 60_000

interface Notice {
  key_id: string
  idle_since: Date
  /** `idle_since` as Postgres writes it (microseconds), to find the row again exactly. */
  idle_key: string
  account_id: string
  name: string
  start: string
}

export interface UnusedRound {
  warned: number
  disabled: number
}

export interface UnusedDeps {
  db: Db
  mailer: Mailer
  logger: Logger
  changes: ChangeTargets
  recipients: (db: Db, accountId: string) => Promise<string[]>
}

/** A notice's idle period start, exactly as stored. */
const at = (notice: Notice) => sql<Date>`${notice.idle_key}::timestamptz`

/** One round: warn what is due a warning, then disable what was warned long enough ago. */
export async function unusedRound(deps: UnusedDeps, policy: UnusedPolicy, now: Date): Promise<UnusedRound> {
  const warned = await warn(deps, policy, now)
  const disabled = await disable(deps, policy, now)
  return { warned, disabled }
}

/** Keys that can still be used: neither revoked, disabled nor expired, of an active account. */
const usable = (now: Date) => sql<boolean>`
  k.revoked_at is null and not k.disabled and (k.expires_at is null or k.expires_at > ${now})
  and exists (select 1 from accounts a where a.id = k.account_id and a.status = 'active')`

async function warn(deps: UnusedDeps, policy: UnusedPolicy, now: Date): Promise<number> {
  const { db, logger } = deps
  const warnFrom = Math.max(policy.afterDays - policy.warningDays, 0)
  let due: Notice[]
  try {
    due = await db.transaction().execute(async (trx) => {
      const { rows: locked } = await sql<{ locked: boolean }>`
        select pg_try_advisory_xact_lock(${LOCK}) as locked`.execute(trx)
      if (!locked[0]?.locked) return []
      await trx
        .deleteFrom('unused_key_notices')
        .where('warned_at', 'is', null)
        .where('claimed_at', '<', new Date(now.getTime() - STALE_CLAIM_MS))
        .execute()
      const { rows } = await sql<Notice>`
        with claimed as (
          insert into unused_key_notices (key_id, idle_since, claimed_at)
          select k.id, coalesce(k.last_used_at, k.created_at), ${now}
          from access_keys k
          where ${usable(now)}
            and coalesce(k.last_used_at, k.created_at) <= ${now}::timestamptz - make_interval(days => ${warnFrom}::int)
          on conflict do nothing
          returning key_id, idle_since
        )
        select c.key_id, c.idle_since, c.idle_since::text as idle_key, k.account_id, k.name, k.start
        from claimed c join access_keys k on k.id = c.key_id
        order by k.account_id, c.idle_since
      `.execute(trx)
      return rows
    })
  } catch (error) {
    logger.warn({ err: error }, 'unused-key warnings skipped this round')
    return 0
  }
  let sent = 0
  for (const [accountId, keys] of groupBy(due, (notice) => notice.account_id)) {
    const disableOn = (notice: Notice) =>
      new Date(
        Math.max(notice.idle_since.getTime() + policy.afterDays * DAY_MS, now.getTime() + policy.warningDays * DAY_MS),
      )
    try {
      await deps.mailer.send({
        to: await deps.recipients(db, accountId),
        subject: `tokend: ${keys.length} unused access key(s) will be disabled`,
        text: [
          `These access keys of your account have not been used for a long time. Unless they are used,`,
          `tokend disables them after ${policy.afterDays} days without use:`,
          '',
          ...keys.map(
            (key) =>
              `  ${key.start}…  "${key.name}"  (${key.key_id}) unused since ${key.idle_since.toISOString()}, disabled from ${disableOn(key).toISOString()}`,
          ),
          '',
          'Revoke the ones nobody needs. A disabled key can be enabled again (token.setDisabled).',
        ].join('\n'),
      })
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('unused_key_notices')
          .set({ warned_at: now })
          .where(
            sql<boolean>`(key_id, idle_since) in (${sql.join(keys.map((key) => sql`(${key.key_id}, ${at(key)})`))})`,
          )
          .execute()
        for (const key of keys) {
          await recordAudit(trx, SYSTEM_ACTOR, {
            accountId,
            action: 'token.unused_warning',
            targetType: 'access_key',
            targetId: key.key_id,
            data: { unusedSince: key.idle_since.toISOString(), disableFrom: disableOn(key).toISOString() },
          })
        }
      })
      sent += keys.length
    } catch (error) {
      logger.error({ err: error, accountId }, 'unused-key warning not sent; will retry')
      await db
        .deleteFrom('unused_key_notices')
        .where('warned_at', 'is', null)
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

async function disable(deps: UnusedDeps, policy: UnusedPolicy, now: Date): Promise<number> {
  const { db, logger } = deps
  let due: Notice[]
  try {
    const { rows } = await sql<Notice>`
      select n.key_id, n.idle_since, n.idle_since::text as idle_key, k.account_id, k.name, k.start
      from unused_key_notices n join access_keys k on k.id = n.key_id
      where n.warned_at is not null and n.disabled_at is null
        and n.warned_at <= ${now}::timestamptz - make_interval(days => ${policy.warningDays}::int)
        and n.idle_since <= ${now}::timestamptz - make_interval(days => ${policy.afterDays}::int)
        and coalesce(k.last_used_at, k.created_at) = n.idle_since
        and ${usable(now)}
      order by k.account_id, n.idle_since
    `.execute(db)
    due = rows
  } catch (error) {
    logger.warn({ err: error }, 'unused keys not disabled this round')
    return 0
  }
  const disabled: Notice[] = []
  for (const notice of due) {
    try {
      if (await disableOne(deps, policy, notice, now)) disabled.push(notice)
    } catch (error) {
      if (error instanceof ConflictError) {
        // The operator account's last way in stays enabled; it is not tried again this idle period.
        logger.warn({ keyId: notice.key_id }, 'unused key not disabled: it is the operator account’s last admin key')
        await db
          .updateTable('unused_key_notices')
          .set({ disabled_at: now })
          .where('key_id', '=', notice.key_id)
          .where('idle_since', '=', at(notice))
          .execute()
          .catch(() => {})
      } else {
        logger.error({ err: error, keyId: notice.key_id }, 'unused key not disabled; will retry')
      }
    }
  }
  for (const [accountId, keys] of groupBy(disabled, (notice) => notice.account_id)) {
    try {
      await deps.mailer.send({
        to: await deps.recipients(db, accountId),
        subject: `tokend: ${keys.length} unused access key(s) disabled`,
        text: [
          `These access keys of your account were unused for ${policy.afterDays} days and have been disabled:`,
          '',
          ...keys.map((key) => `  ${key.start}…  "${key.name}"  (${key.key_id})`),
          '',
          'Enable one again (token.setDisabled) if a service still needs it; revoke the others.',
        ].join('\n'),
      })
    } catch (error) {
      logger.error({ err: error, accountId }, 'unused-key notice not sent')
    }
  }
  return disabled.length
}

/**
 * Disables one key in one change transaction: the notice row is taken first (only one
 * replica's update finds it open), then the key is re-read under lock and disabled only
 * if it is still unused since the warning and still enabled.
 */
async function disableOne(deps: UnusedDeps, policy: UnusedPolicy, notice: Notice, now: Date): Promise<boolean> {
  return changeTransaction({ ...deps.changes, db: deps.db }, async (trx, announce) => {
    const taken = await trx
      .updateTable('unused_key_notices')
      .set({ disabled_at: now })
      .where('key_id', '=', notice.key_id)
      .where('idle_since', '=', at(notice))
      .where('disabled_at', 'is', null)
      .returning('warned_at')
      .executeTakeFirst()
    if (!taken) return false
    const key = await trx
      .selectFrom('access_keys')
      .select(['id', 'disabled', 'revoked_at'])
      .select(sql<boolean>`coalesce(last_used_at, created_at) = ${notice.idle_key}::timestamptz`.as('unused'))
      .where('id', '=', notice.key_id)
      .forUpdate()
      .executeTakeFirst()
    // Used since the warning, or changed by someone else meanwhile: this idle period is over.
    if (!key?.unused || key.disabled || key.revoked_at) return false
    const changed = await trx
      .updateTable('access_keys')
      .set({ disabled: true })
      .where('id', '=', key.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await keepOperatorAccess(trx, changed)
    await announce(keyChange(changed))
    await recordAudit(trx, SYSTEM_ACTOR, {
      accountId: changed.account_id,
      action: 'token.disable',
      targetType: 'access_key',
      targetId: changed.id,
      data: {
        reason: 'unused',
        unusedSince: notice.idle_since.toISOString(),
        afterDays: policy.afterDays,
        warnedAt: taken.warned_at?.toISOString() ?? null,
      },
    })
    return true
  })
}
