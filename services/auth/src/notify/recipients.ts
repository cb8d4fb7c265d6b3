import type { Db } from '../db/database.ts'

/**
 * The addresses to tell about an account's keys: its admins. Accounts have no people
 * yet (users arrive with sign-up and login), so there is nobody to write to and the
 * mailer logs the notice instead.
 */
export async function accountAdminEmails(_db: Db, _accountId: string): Promise<string[]> {
  return []
}
