import type { Db } from '../db/database.ts'
import type { NewRecording, RecordingRow } from '../db/schema.ts'

/** A partition of the data: one account's recordings in one environment. */
export interface Partition {
  accountId: string
  environment: 'live' | 'test'
}

export function insertRecording(db: Db, recording: NewRecording): Promise<RecordingRow> {
  return db.insertInto('recordings').values(recording).returningAll().executeTakeFirstOrThrow()
}

/** Looks a recording up by id alone, so the caller can tell "another account's" from "none". */
export async function findRecording(db: Db, id: string): Promise<RecordingRow | undefined> {
  return db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst()
}

export function listRecordings(db: Db, partition: Partition, limit: number, before?: string): Promise<RecordingRow[]> {
  let query = db
    .selectFrom('recordings')
    .selectAll()
    .where('account_id', '=', partition.accountId)
    .where('environment', '=', partition.environment)
  if (before) query = query.where('id', '<', before)
  return query.orderBy('id', 'desc').limit(limit).execute()
}

export async function deleteRecording(db: Db, partition: Partition, id: string): Promise<boolean> {
  const result = await db
    .deleteFrom('recordings')
    .where('id', '=', id)
    .where('account_id', '=', partition.accountId)
    .where('environment', '=', partition.environment)
    .executeTakeFirst()
  return result.numDeletedRows > 0n
}
