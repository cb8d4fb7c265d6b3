import type { Logger } from 'pino'
import type { VerifyCache } from './cache/verify-cache.ts'
import type { ChangeListener } from './changes/change-listener.ts'
import type { Config } from './config.ts'
import type { Db } from './db/database.ts'
import type { JwtRecord } from './sessions/jwt.ts'
import type { SigningKeys } from './sessions/signing-keys.ts'
import type { PasswordHasher } from './users/passwords.ts'

/** What procedures and services need from the running app. */
export interface Deps {
  config: Config
  db: Db
  /** Access keys, by digest. */
  cache: VerifyCache
  /** Sessions and direct links behind JWTs, by session or link id. */
  jwtCache: VerifyCache<JwtRecord>
  signingKeys: SigningKeys
  passwords: PasswordHasher
  /** This replica's subscription to change events from every replica. */
  changes: ChangeListener
  logger: Logger
}
