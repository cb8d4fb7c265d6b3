import type { Db } from '../db/database.ts'
import type { AccountRow, AccountUpdate, NewAccount } from '../db/schema.ts'

export function findAccount(db: Db, id: string): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst()
}

export function findOperatorAccount(db: Db): Promise<AccountRow | undefined> {
  return db.selectFrom('accounts').selectAll().where('operator', '=', true).executeTakeFirst()
}

export function insertAccount(db: Db, account: NewAccount): Promise<AccountRow> {
  return db.insertInto('accounts').values(account).returningAll().executeTakeFirstOrThrow()
}

export function listAccounts(db: Db, page: { limit: number; cursor?: string | undefined }): Promise<AccountRow[]> {
  let query = db.selectFrom('accounts').selectAll()
  if (page.cursor) query = query.where('id', '<', page.cursor)
  return query.orderBy('id', 'desc').limit(page.limit).execute()
}

export function updateAccount(db: Db, id: string, changes: AccountUpdate): Promise<AccountRow> {
  return db.updateTable('accounts').set(changes).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}
