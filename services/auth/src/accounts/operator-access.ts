import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { ConflictError } from '../errors.ts'

/**
 * The platform team's way into tokend: the operator account keeps at least one active
 * admin access key or one admin user (who can sign in). When it has lost both anyway
 * (a leak report revoked its last key), an operator with database access issues a
 * fresh admin key with `recover-operator` (operator.ts, docs/operations.md).
 */

/**
 * Whether the operator account still has a way in: an active admin access key (not
 * revoked, disabled or expired) or an admin user. Call it inside the transaction of a
 * change, after the change, with the account locked (lockOperator).
 */
export async function operatorHasAccess(trx: Db, accountId: string): Promise<boolean> {
  const { rows } = await sql<{ access: boolean }>`
    select exists (
      select 1 from access_keys where account_id = ${accountId} and role = 'admin' and revoked_at is null
        and not disabled and (expires_at is null or expires_at > now())
    ) or exists (select 1 from users where account_id = ${accountId} and role = 'admin') as access
  `.execute(trx)
  return rows[0]?.access ?? false
}

/**
 * Locks `accountId`'s row when it is the operator account and says whether it is.
 * Changes to its admin keys take turns on this lock, so two revocations racing on any
 * number of replicas cannot both remove what the other counted on.
 */
export async function lockOperator(trx: Db, accountId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('accounts')
    .select('operator')
    .where('id', '=', accountId)
    .where('operator', '=', true)
    .forUpdate()
    .executeTakeFirst()
  return row !== undefined
}

/**
 * Refuses (409 `conflict`) a change to an admin key of the operator account that would
 * leave it without an active admin key and without an admin user. Call it inside the
 * change's transaction, after the change.
 */
export async function keepOperatorAccess(trx: Db, key: { account_id: string; role: string }): Promise<void> {
  if (key.role !== 'admin' || !(await lockOperator(trx, key.account_id))) return
  if (await operatorHasAccess(trx, key.account_id)) return
  throw new ConflictError(
    'conflict',
    "this is the operator account's last active admin credential: issue another admin key (or create an admin user) first",
  )
}
