import { defaultEnvironment } from '../accounts/plans.ts'
import type { Db } from '../db/database.ts'
import type { SessionRow } from '../db/schema.ts'
import type { SessionRecord } from './jwt.ts'

/** The session with its user and account, as verification needs it (null: no such session). */
export async function findSessionRecord(db: Db, id: string): Promise<SessionRecord | null> {
  const row = await db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .innerJoin('accounts as a', 'a.id', 's.account_id')
    .select([
      's.id',
      's.user_id',
      's.account_id',
      's.expires_at',
      's.revoked_at',
      'u.username',
      'u.role',
      'a.status',
      'a.plan',
      'a.operator',
    ])
    .where('s.id', '=', id)
    .executeTakeFirst()
  if (!row) return null
  return {
    kind: 'session',
    id: row.id,
    userId: row.user_id,
    username: row.username,
    accountId: row.account_id,
    role: row.role,
    operator: row.operator,
    environment: defaultEnvironment(row.plan),
    accountActive: row.status === 'active',
    revoked: row.revoked_at !== null,
    expiresAt: row.expires_at.getTime(),
  }
}

export function insertSession(
  db: Db,
  session: {
    id: string
    userId: string
    accountId: string
    expiresAt: Date
    address: string | null
    userAgent: string | null
  },
): Promise<SessionRow> {
  return db
    .insertInto('sessions')
    .values({
      id: session.id,
      user_id: session.userId,
      account_id: session.accountId,
      expires_at: session.expiresAt,
      address: session.address,
      user_agent: session.userAgent,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

export function findSession(db: Db, id: string, options: { forUpdate?: boolean } = {}) {
  let query = db.selectFrom('sessions').selectAll().where('id', '=', id)
  if (options.forUpdate) query = query.forUpdate()
  return query.executeTakeFirst()
}

export function revokeSession(db: Db, id: string): Promise<SessionRow> {
  return db
    .updateTable('sessions')
    .set({ revoked_at: new Date() })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Sessions past their expiry verify as EXPIRED from the token alone; their rows can go. */
export async function deleteExpiredSessions(db: Db, before: Date): Promise<void> {
  await db.deleteFrom('sessions').where('expires_at', '<', before).execute()
}
