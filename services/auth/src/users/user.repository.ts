import type { Db } from '../db/database.ts'
import type { UserRow } from '../db/schema.ts'
import { ConflictError } from '../errors.ts'

export function findUser(db: Db, id: string, options: { forUpdate?: boolean } = {}): Promise<UserRow | undefined> {
  let query = db.selectFrom('users').selectAll().where('id', '=', id)
  if (options.forUpdate) query = query.forUpdate()
  return query.executeTakeFirst()
}

/** The user and its account's status, for sign-in: one query whether or not the user exists. */
export function findUserForLogin(db: Db, username: string) {
  return db
    .selectFrom('users as u')
    .innerJoin('accounts as a', 'a.id', 'u.account_id')
    .selectAll('u')
    .select('a.status as account_status')
    .where('u.username', '=', username)
    .executeTakeFirst()
}

export async function insertUser(db: Db, user: Omit<UserRow, 'created_at'>): Promise<UserRow> {
  try {
    return await db.insertInto('users').values(user).returningAll().executeTakeFirstOrThrow()
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new ConflictError('username_taken', `the username "${user.username}" is taken`, { cause: error })
    }
    throw error
  }
}

export function listUsers(db: Db, page: { accountId: string; limit: number; cursor?: string | undefined }) {
  let query = db.selectFrom('users').selectAll().where('account_id', '=', page.accountId)
  if (page.cursor) query = query.where('id', '<', page.cursor)
  return query.orderBy('id', 'desc').limit(page.limit).execute()
}

/** Locks the account's admins, so two changes cannot each leave the other as the last one. */
export async function lockAdmins(db: Db, accountId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('users')
    .select('id')
    .where('account_id', '=', accountId)
    .where('role', '=', 'admin')
    .forUpdate()
    .execute()
  return rows.map((row) => row.id)
}

export function updateUserRole(db: Db, id: string, role: UserRow['role']): Promise<UserRow> {
  return db.updateTable('users').set({ role }).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

export async function deleteUser(db: Db, id: string): Promise<void> {
  await db.deleteFrom('users').where('id', '=', id).execute()
}
