import type pg from 'pg'
import type { Logger } from 'pino'
import type { VerifyCache } from './cache/verify-cache.ts'
import type { ChangeListener } from './changes/change-listener.ts'
import type { Config } from './config.ts'
import type { CreditLedger } from './credits/credit-ledger.ts'
import type { Db } from './db/database.ts'
import type { Metrics } from './metrics/metrics.ts'
import type { Mailer } from './notify/mailer.ts'
import type { RateLimiter } from './ratelimit/rate-limiter.ts'
import type { ReminderScheduler } from './reminders/reminder-scheduler.ts'
import type { JwtRecord } from './sessions/jwt.ts'
import type { SigningKeys } from './sessions/signing-keys.ts'
import type { CallerKeys, KeyDigests } from './tokens/caller-keys.ts'
import type { KeyLoader } from './tokens/key-loader.ts'
import type { UsageRecorder } from './tokens/usage.ts'
import type { PasswordHasher } from './users/passwords.ts'

/** What procedures and services need from the running app. */
export interface Deps {
  config: Config
  db: Db
  /** The pool under `db`. */
  pool: pg.Pool
  /** Cache misses, looked up in batches. */
  keys: KeyLoader
  /** Access keys, by digest. */
  cache: VerifyCache
  /** What was worked out for the keys that call tokend (never a decision; see CallerKeys). */
  callerKeys: CallerKeys
  /** The digests of keys found before, by plaintext (see KeyDigests). */
  keyDigests: KeyDigests
  /** Sessions and direct links behind JWTs, by session or link id. */
  jwtCache: VerifyCache<JwtRecord>
  signingKeys: SigningKeys
  passwords: PasswordHasher
  /** Request limits that sibling services ask verify to apply, shared by every replica. */
  ratelimits: RateLimiter
  /** Usage credits this replica holds on lease from Postgres. */
  credits: CreditLedger
  /** lastUsedAt, coalesced. */
  usage: UsageRecorder
  mailer: Mailer
  metrics: Metrics
  reminders: ReminderScheduler
  /** This replica's subscription to change events from every replica. */
  changes: ChangeListener
  logger: Logger
}
