/**
 * recover-operator: issues a fresh operator admin key (every `tokend:*` scope) straight
 * into tokend's database, for a platform team that has lost every operator credential.
 * It needs DATABASE_URL, so only someone who can already reach the database can use it;
 * the key is audited as `account.recover_operator` and printed once on stdout.
 *
 *   DATABASE_URL=postgres://… pnpm --filter @tokend/auth recover-operator [--out <file>]
 *   DATABASE_URL=postgres://… node dist/recover-operator.js [--out <file>]   (in the image)
 */
import { hostname, userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { recoverOperator } from './accounts/operator.ts'
import { ConfigError, loadConfig } from './config.ts'
import { createDb } from './db/database.ts'

const USAGE = 'usage: DATABASE_URL=postgres://… recover-operator [--out <file>]'

function fail(message: string, code: number): never {
  process.stderr.write(`recover-operator: ${message}\n`)
  process.exit(code)
}

let out: string | undefined
try {
  ;({
    values: { out },
  } = parseArgs({ options: { out: { type: 'string' } }, strict: true }))
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`, 2)
}

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  fail(error.message, 2)
}
if (!config.DATABASE_URL) fail(`set DATABASE_URL to tokend's database\n${USAGE}`, 2)

const { db } = createDb(config.DATABASE_URL, 1, () => {})
try {
  const who = { osUser: safely(() => userInfo().username), host: hostname() }
  const key = await recoverOperator(db, config.TOKEND_TOKEN_PREFIX, {
    actor: { type: 'system', id: null, requestId: null, address: null, userAgent: 'tokend recover-operator' },
    who,
    keyFile: out,
  })
  process.stderr.write(
    `recover-operator: issued ${key.tokenId}, an admin key of the operator account ${key.accountId}` +
      `${out ? ` (also written to ${out})` : ''}; it is shown once: store it now, then rotate or revoke the lost keys\n`,
  )
  process.stdout.write(`${key.token}\n`)
} catch (error) {
  fail(error instanceof Error ? error.message : String(error), 1)
} finally {
  await db.destroy()
}

function safely(read: () => string): string {
  try {
    return read()
  } catch {
    return 'unknown'
  }
}
