import type { Db } from '../db/database.ts'
import type { DirectRow } from '../db/schema.ts'
import type { DirectRecord } from '../sessions/jwt.ts'

/** The link and its account's state, as verification needs them (null: deleted or never existed). */
export async function findDirectRecord(db: Db, id: string): Promise<DirectRecord | null> {
  const row = await db
    .selectFrom('directs as d')
    .innerJoin('accounts as a', 'a.id', 'd.account_id')
    .select(['d.id', 'd.account_id', 'd.resource_type', 'd.resource_id', 'd.environment', 'a.status', 'a.operator'])
    .where('d.id', '=', id)
    .executeTakeFirst()
  if (!row) return null
  return {
    kind: 'direct',
    id: row.id,
    accountId: row.account_id,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    environment: row.environment,
    operator: row.operator,
    accountActive: row.status === 'active',
    revoked: false,
    expiresAt: null,
  }
}

/** The link a direct hash stands for, with its account's status. */
export function findDirectByDigest(db: Db, digest: string) {
  return db
    .selectFrom('directs as d')
    .innerJoin('accounts as a', 'a.id', 'd.account_id')
    .selectAll('d')
    .select('a.status as account_status')
    .where('d.digest', '=', digest)
    .executeTakeFirst()
}

export function findDirect(db: Db, id: string): Promise<DirectRow | undefined> {
  return db.selectFrom('directs').selectAll().where('id', '=', id).executeTakeFirst()
}

export function insertDirect(db: Db, direct: Omit<DirectRow, 'created_at'>): Promise<DirectRow> {
  return db.insertInto('directs').values(direct).returningAll().executeTakeFirstOrThrow()
}

export function listDirects(db: Db, page: { accountId: string; limit: number; cursor?: string | undefined }) {
  let query = db.selectFrom('directs').selectAll().where('account_id', '=', page.accountId)
  if (page.cursor) query = query.where('id', '<', page.cursor)
  return query.orderBy('id', 'desc').limit(page.limit).execute()
}

export async function deleteDirect(db: Db, id: string): Promise<void> {
  await db.deleteFrom('directs').where('id', '=', id).execute()
}
