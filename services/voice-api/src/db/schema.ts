import type { ColumnType, Insertable, Selectable } from 'kysely'

export interface Database {
  recordings: RecordingsTable
}

export interface RecordingsTable {
  id: string
  account_id: string
  environment: 'live' | 'test'
  title: string
  /** The id (never the secret) of the key that created it. */
  created_by: string
  created_at: ColumnType<Date, Date | string | undefined, never>
}

export type RecordingRow = Selectable<RecordingsTable>
export type NewRecording = Insertable<RecordingsTable>
