import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | null, Date | string | null>

export interface Database {
  accounts: AccountsTable
  access_keys: AccessKeysTable
  audit_events: AuditEventsTable
  rate_limit_counters: RateLimitCountersTable
  expiry_reminders: ExpiryRemindersTable
  unused_key_notices: UnusedKeyNoticesTable
  users: UsersTable
  sessions: SessionsTable
  signing_keys: SigningKeysTable
  directs: DirectsTable
  login_throttle: LoginThrottleTable
  key_credits: KeyCreditsTable
}

export interface AccountsTable {
  id: string
  name: string
  plan: 'trial' | 'paid'
  status: Generated<'active' | 'suspended'>
  operator: Generated<boolean>
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

export interface AccessKeysTable {
  id: string
  account_id: string
  digest: string
  start: string
  environment: 'live' | 'test'
  name: string
  detail: string | null
  role: 'admin' | 'manager'
  scopes: string[]
  expires_at: Timestamp | null
  disabled: Generated<boolean>
  revoked_at: Timestamp | null
  last_used_at: Timestamp | null
  created_by: string | null
  rotated_from: string | null
  /** A JSON object of at most 4 KB (SPEC §14); written as JSON text. */
  meta: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>
  /** Normalized CIDRs the key may be used from; empty: anywhere. */
  allowed_cidrs: ColumnType<string[], string[] | undefined, string[]>
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

export interface AuditEventsTable {
  id: string
  account_id: string | null
  actor_type: string
  actor_id: string | null
  action: string
  target_type: string | null
  target_id: string | null
  address: string | null
  user_agent: string | null
  request_id: string | null
  data: ColumnType<Record<string, unknown>, string, string>
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

export interface RateLimitCountersTable {
  account_id: string
  name: string
  window_ms: number
  window_start: Timestamp
  used: number
}

export interface ExpiryRemindersTable {
  key_id: string
  threshold_days: number
  claimed_at: Timestamp
  sent_at: Timestamp | null
}

export interface UnusedKeyNoticesTable {
  key_id: string
  idle_since: Timestamp
  claimed_at: Timestamp
  warned_at: Timestamp | null
  disabled_at: Timestamp | null
}

export interface UsersTable {
  id: string
  account_id: string
  username: string
  email: string
  password_hash: string
  role: 'admin' | 'manager'
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

export interface SessionsTable {
  id: string
  user_id: string
  account_id: string
  expires_at: ColumnType<Date, Date | string, Date | string>
  revoked_at: Timestamp | null
  address: string | null
  user_agent: string | null
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

/** An Ed25519 key pair as JWKs. `private_jwk` is secret: whoever reads it can mint sessions. */
export interface SigningKeysTable {
  id: string
  public_jwk: ColumnType<Record<string, string>, string, string>
  private_jwk: ColumnType<Record<string, string>, string, string>
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
  retired_at: Timestamp | null
}

export interface DirectsTable {
  id: string
  account_id: string
  digest: string
  start: string
  resource_type: string
  resource_id: string
  environment: 'live' | 'test'
  created_by: string | null
  created_at: ColumnType<Date, Date | string | undefined, Date | string>
}

export interface LoginThrottleTable {
  key: string
  window_start: ColumnType<Date, Date | string, Date | string>
  attempts: number
}

/** A key's usage credits: `remaining` is what no replica holds on lease (see credits/). */
export interface KeyCreditsTable {
  key_id: string
  remaining: number
  refill_amount: number | null
  refill_interval: 'day' | 'month' | null
  refilled_at: ColumnType<Date, Date | string, Date | string>
  generation: Generated<number>
}

export type AccountRow = Selectable<AccountsTable>
export type NewAccount = Insertable<AccountsTable>
export type AccountUpdate = Updateable<AccountsTable>
export type AccessKeyRow = Selectable<AccessKeysTable>
export type NewAccessKey = Insertable<AccessKeysTable>
export type AccessKeyUpdate = Updateable<AccessKeysTable>
export type NewAuditEvent = Insertable<AuditEventsTable>
export type UserRow = Selectable<UsersTable>
export type SessionRow = Selectable<SessionsTable>
export type SigningKeyRow = Selectable<SigningKeysTable>
export type DirectRow = Selectable<DirectsTable>
