import type { Selectable } from 'kysely'
import { type SelectQueryBuilder, sql } from 'kysely'
import type pg from 'pg'
import { KeyRecord } from '../cache/key-record.ts'
import type { Db } from '../db/database.ts'
import type {
  AccessKeyRow,
  AccessKeysTable,
  AccessKeyUpdate,
  AccountsTable,
  Database,
  NewAccessKey,
} from '../db/schema.ts'
import { keyControls } from './key-controls.ts'

export type TokenStatusFilter = 'active' | 'disabled' | 'revoked' | 'expired' | 'all'

// The columns verification needs of a key and its account.
const KEY_RECORD_COLUMNS = `k.id, k.digest, k.account_id, k.environment, k.role, k.scopes, k.name, k.expires_at,
                k.disabled, k.revoked_at, k.meta, k.allowed_cidrs, a.status, a.operator,
                exists (select 1 from key_credits c where c.key_id = k.id) as metered
         from access_keys k join accounts a on a.id = k.account_id`

const FIND_KEY_RECORDS = {
  // Named, so each pooled connection parses and plans it once: this is the cache-miss path.
  name: 'tokend_find_key_records',
  text: `select ${KEY_RECORD_COLUMNS} where k.digest = any($1::text[])`,
}

const FIND_KEY_RECORD_BY_ID = {
  // A derived token's parent key (tokens/derived.ts), on its cache miss.
  name: 'tokend_find_key_record_by_id',
  text: `select ${KEY_RECORD_COLUMNS} where k.id = $1`,
}

type KeyRecordRow = Pick<
  Selectable<AccessKeysTable>,
  | 'id'
  | 'digest'
  | 'account_id'
  | 'environment'
  | 'role'
  | 'scopes'
  | 'name'
  | 'expires_at'
  | 'disabled'
  | 'revoked_at'
  | 'meta'
  | 'allowed_cidrs'
> &
  Pick<Selectable<AccountsTable>, 'status' | 'operator'> & { metered: boolean }

export interface FoundKeyRecord {
  /** The digest as stored, for the caller's constant-time comparison. */
  digest: string
  record: KeyRecord
}

/** The rows of these digests (those that exist) and their accounts' state, as verification needs them. */
export async function findKeyRecords(pool: pg.Pool, digests: string[]): Promise<FoundKeyRecord[]> {
  const { rows } = await pool.query<KeyRecordRow>({ ...FIND_KEY_RECORDS, values: [digests] })
  return rows.map((row) => ({ digest: row.digest, record: keyRecordOf(row) }))
}

/** The record of the key with this id (revoked or not), or null. */
export async function findKeyRecordById(pool: pg.Pool, id: string): Promise<KeyRecord | null> {
  const { rows } = await pool.query<KeyRecordRow>({ ...FIND_KEY_RECORD_BY_ID, values: [id] })
  return rows[0] ? keyRecordOf(rows[0]) : null
}

function keyRecordOf(row: KeyRecordRow): KeyRecord {
  return KeyRecord.from({
    id: row.id,
    accountId: row.account_id,
    environment: row.environment,
    role: row.role,
    scopes: row.scopes,
    name: row.name,
    expiresAt: row.expires_at?.getTime() ?? null,
    disabled: row.disabled,
    revoked: row.revoked_at !== null,
    accountActive: row.status === 'active',
    operator: row.operator,
    controls: keyControls(row.meta, row.allowed_cidrs),
    metered: row.metered,
  })
}

/** One digest's row, or null. */
export async function findKeyRecord(pool: pg.Pool, digest: string): Promise<FoundKeyRecord | null> {
  return (await findKeyRecords(pool, [digest]))[0] ?? null
}

export function findKeyById(db: Db, id: string, options: { forUpdate?: boolean } = {}) {
  let query = db.selectFrom('access_keys').selectAll().where('id', '=', id)
  if (options.forUpdate) query = query.forUpdate()
  return query.executeTakeFirst()
}

export function insertKey(db: Db, key: NewAccessKey): Promise<AccessKeyRow> {
  return db.insertInto('access_keys').values(key).returningAll().executeTakeFirstOrThrow()
}

export function updateKey(db: Db, id: string, changes: AccessKeyUpdate): Promise<AccessKeyRow> {
  return db.updateTable('access_keys').set(changes).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

export function listKeys(
  db: Db,
  filter: {
    accountId: string
    environment?: 'live' | 'test'
    status: TokenStatusFilter
    /** Days: keys not yet expired whose expiry falls within them. */
    expiringWithin?: number | undefined
    /** Days: keys last used (or, never used, created) at least that long ago. */
    unusedFor?: number | undefined
    limit: number
    cursor?: string
  },
): Promise<AccessKeyRow[]> {
  let query = db.selectFrom('access_keys').selectAll().where('account_id', '=', filter.accountId)
  if (filter.environment) query = query.where('environment', '=', filter.environment)
  if (filter.cursor) query = query.where('id', '<', filter.cursor)
  query = whereStatus(query, filter.status)
  if (filter.expiringWithin !== undefined) {
    query = query
      .where('expires_at', '>', sql<Date>`now()`)
      .where('expires_at', '<=', sql<Date>`now() + make_interval(days => ${filter.expiringWithin}::int)`)
  }
  if (filter.unusedFor !== undefined) {
    query = query.where(
      sql<Date>`coalesce(last_used_at, created_at)`,
      '<=',
      sql<Date>`now() - make_interval(days => ${filter.unusedFor}::int)`,
    )
  }
  return query.orderBy('id', 'desc').limit(filter.limit).execute()
}

/** Mirrors `tokenStatus`: revoked, then expired, then disabled, then active. */
function whereStatus<O>(
  query: SelectQueryBuilder<Database, 'access_keys', O>,
  status: TokenStatusFilter,
): SelectQueryBuilder<Database, 'access_keys', O> {
  const expired = sql<boolean>`(expires_at is not null and expires_at <= now())`
  switch (status) {
    case 'all':
      return query
    case 'revoked':
      return query.where('revoked_at', 'is not', null)
    case 'expired':
      return query.where('revoked_at', 'is', null).where(expired)
    case 'disabled':
      return query.where('revoked_at', 'is', null).where(sql<boolean>`not ${expired}`).where('disabled', '=', true)
    case 'active':
      return query.where('revoked_at', 'is', null).where(sql<boolean>`not ${expired}`).where('disabled', '=', false)
  }
}

/** Keys that still count against the active-key limit, and creations in the last `windowMs`. */
export async function countKeysForLimits(db: Db, accountId: string, windowMs: number) {
  const { rows } = await sql<{ active: number; recent: number; oldest_recent: Date | null }>`
    select count(*) filter (where revoked_at is null and (expires_at is null or expires_at > now()))::int as active,
           count(*) filter (where created_at > now() - ${windowMs} * interval '1 millisecond')::int as recent,
           min(created_at) filter (where created_at > now() - ${windowMs} * interval '1 millisecond') as oldest_recent
    from access_keys where account_id = ${accountId}
  `.execute(db)
  return rows[0] as { active: number; recent: number; oldest_recent: Date | null }
}
