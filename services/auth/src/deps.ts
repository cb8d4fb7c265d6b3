import type { Logger } from 'pino'
import type { VerifyCache } from './cache/verify-cache.ts'
import type { ChangeListener } from './changes/change-listener.ts'
import type { Config } from './config.ts'
import type { Db } from './db/database.ts'

/** What procedures and services need from the running app. */
export interface Deps {
  config: Config
  db: Db
  cache: VerifyCache
  /** This replica's subscription to change events from every replica. */
  changes: ChangeListener
  logger: Logger
}
