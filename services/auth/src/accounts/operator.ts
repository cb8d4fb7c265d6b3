import { recordAudit } from '../audit/audit.repository.ts'
import type { Db } from '../db/database.ts'
import { newId } from '../ids.ts'
import { type Actor, SYSTEM_ACTOR, TOKEND_SCOPES } from '../principal.ts'
import { createKey } from '../tokens/token.service.ts'
import * as accounts from './account.repository.ts'
import { KeyFileError, writeKeyFile } from './key-file.ts'

export interface OperatorKey {
  token: string
  accountId: string
  tokenId: string
}

/**
 * On an empty database: creates the operator account and its first admin key with
 * every reserved scope, and hands the key over before anything is committed. With
 * `keyFile` the key is written there (writeKeyFile: a new 0600 file, synced) inside
 * the transaction, so a missing directory or a full disk leaves nothing behind and the
 * next start bootstraps again. Returns the plaintext for the caller to show once,
 * after the commit, or null when the operator exists. Runs under the start-up lock,
 * so concurrent replicas bootstrap exactly once.
 */
export async function bootstrap(db: Db, prefix: string, keyFile?: string): Promise<OperatorKey | null> {
  if (await accounts.findOperatorAccount(db)) return null
  let written = false
  try {
    return await db.transaction().execute(async (trx) => {
      const account = await accounts.insertAccount(trx, {
        id: newId('acc'),
        name: 'operator',
        plan: 'paid',
        operator: true,
      })
      const key = await issueOperatorKey(trx, prefix, account.id, {
        name: 'bootstrap admin',
        detail: 'created on first start; rotate it once you have issued your own keys',
      })
      await recordAudit(trx, SYSTEM_ACTOR, {
        accountId: account.id,
        action: 'account.bootstrap',
        targetType: 'access_key',
        targetId: key.tokenId,
      })
      // Last, so that nothing can fail between handing the key over and committing it.
      if (keyFile) {
        await writeKeyFile(keyFile, key.token).catch(bootstrapFailed)
        written = true
      }
      return key
    })
  } catch (error) {
    if (!written) throw error
    // The commit itself failed after the file was written: whether the key exists is unknown,
    // so the file stays; a later bootstrap refuses to overwrite it.
    throw new Error(
      `the bootstrap key was written to ${keyFile}, but its commit failed: if the next start bootstraps again, move that file away first`,
      { cause: error },
    )
  }
}

function bootstrapFailed(error: unknown): never {
  if (!(error instanceof KeyFileError)) throw error
  throw new KeyFileError(`${error.message}; nothing was created, fix it and start again`, { cause: error })
}

/**
 * Issues a fresh operator admin key holding every reserved scope, whatever the key
 * limits say, audited as `account.recover_operator`. For an operator who has lost
 * every operator credential and can reach the database (the `recover-operator` script).
 * With `keyFile` the key is written there before the commit, as at bootstrap.
 */
export async function recoverOperator(
  db: Db,
  prefix: string,
  options: { actor: Actor; who: Record<string, string>; keyFile?: string | undefined },
): Promise<OperatorKey> {
  return db.transaction().execute(async (trx) => {
    const operator = await accounts.findOperatorAccount(trx)
    if (!operator) throw new Error('there is no operator account yet: start tokend, and it creates one on first start')
    const key = await issueOperatorKey(trx, prefix, operator.id, {
      name: 'recovered admin',
      detail: `issued by recover-operator (${Object.values(options.who).join(', ')}); rotate it once you are back in`,
    })
    await recordAudit(trx, options.actor, {
      accountId: operator.id,
      action: 'account.recover_operator',
      targetType: 'access_key',
      targetId: key.tokenId,
      data: options.who,
    })
    if (options.keyFile) await writeKeyFile(options.keyFile, key.token)
    return key
  })
}

async function issueOperatorKey(
  trx: Db,
  prefix: string,
  accountId: string,
  label: { name: string; detail: string },
): Promise<OperatorKey> {
  const { token, row } = await createKey(trx, prefix, {
    accountId,
    environment: 'live',
    ...label,
    role: 'admin',
    scopes: [...TOKEND_SCOPES],
    expiresAt: null,
    createdBy: null,
    rotatedFrom: null,
  })
  return { token, accountId, tokenId: row.id }
}
