import type { Db } from '../db/database.ts'

/** The addresses to tell about an account's keys: its admin users. */
export async function accountAdminEmails(db: Db, accountId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('users')
    .select('email')
    .where('account_id', '=', accountId)
    .where('role', '=', 'admin')
    .orderBy('email')
    .execute()
  return rows.map((row) => row.email)
}
