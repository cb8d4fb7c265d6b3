import { digestKey, parseKey } from '@tokend/keys'
import { lockOperator, operatorHasAccess } from '../accounts/operator-access.ts'
import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction, keyChange } from '../changes/change-events.ts'
import type { Db } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError } from '../errors.ts'
import { groupBy } from '../group-by.ts'
import { accountAdminEmails } from '../notify/recipients.ts'
import type { Actor, Principal } from '../principal.ts'

export type LeakStatus = 'revoked' | 'already_revoked' | 'malformed' | 'unknown'

/** One reported string's fate, by its position in the report (the string is never echoed). */
export interface LeakResult {
  index: number
  status: LeakStatus
  tokenId?: string
  accountId?: string
}

/** Where a report came from, for the audit events and the admins' mail. */
export interface LeakSource {
  /** Who found the keys, e.g. `github_secret_scanning`. */
  reporter: string
  /** Per reported string, where it was found (same positions as the tokens). */
  urls?: ReadonlyArray<string | undefined>
}

/**
 * SPEC §9 leak response: revokes every valid key among the reported strings, audits
 * it, and tells each affected account's admins. Malformed and unknown entries are
 * reported back, not fatal.
 */
export async function reportLeaked(
  deps: Deps,
  principal: Principal,
  actor: Actor,
  tokens: string[],
): Promise<{ revoked: number; results: LeakResult[] }> {
  const operatorAdmin = principal.operator && principal.role === 'admin'
  if (!operatorAdmin && !principal.scopes.includes('tokend:scanner')) {
    throw new ForbiddenError('reporting leaks needs the operator account or the tokend:scanner scope', [
      'tokend:scanner',
    ])
  }
  return revokeLeaked(deps, actor, tokens)
}

/**
 * The leak response itself, for a caller already known to be entitled to it: a
 * `token.reportLeaked` caller, or a partner whose signature was checked
 * (secret-scanning.ts).
 */
export async function revokeLeaked(
  deps: Deps,
  actor: Actor,
  tokens: readonly string[],
  source?: LeakSource,
): Promise<{ revoked: number; results: LeakResult[] }> {
  const prefix = deps.config.TOKEND_TOKEN_PREFIX
  const digests = tokens.map((token) => (parseKey(token, prefix) ? digestKey(token) : null))
  const wanted = [...new Set(digests.filter((digest): digest is string => digest !== null))]

  // Where each key was found, when the reporter says so (the first place it names).
  const urls = new Map<string, string>()
  digests.forEach((digest, index) => {
    const url = source?.urls?.[index]
    if (digest !== null && url && !urls.has(digest)) urls.set(digest, url)
  })
  const foundAt = (digest: string) => urls.get(digest)

  const { results, revoked, operatorLockedOut } = await changeTransaction(deps, async (trx, announce) => {
    const rows =
      wanted.length === 0
        ? []
        : await trx
            .selectFrom('access_keys')
            .selectAll()
            .where('digest', 'in', wanted)
            .orderBy('id')
            .forUpdate()
            .execute()
    const byDigest = new Map(rows.map((row) => [row.digest, row]))
    const revoked = rows.filter((row) => row.revoked_at === null)
    if (revoked.length > 0) {
      await trx
        .updateTable('access_keys')
        .set({ revoked_at: new Date() })
        .where(
          'id',
          'in',
          revoked.map((row) => row.id),
        )
        .execute()
    }
    for (const row of revoked) {
      await announce(keyChange(row))
      await recordAudit(trx, actor, {
        accountId: row.account_id,
        action: 'token.revoke',
        targetType: 'access_key',
        targetId: row.id,
        data: {
          reason: 'leaked',
          ...(source && { reporter: source.reporter }),
          ...(foundAt(row.digest) && { url: foundAt(row.digest) }),
        },
      })
    }
    // A leaked key is revoked even when it is the operator's last way in: whoever holds
    // the leak must lose it. The platform team gets back in with recover-operator.
    const operatorLockedOut = await lockedOutOperator(trx, revoked)
    if (operatorLockedOut) {
      await recordAudit(trx, actor, {
        accountId: operatorLockedOut,
        action: 'account.operator_locked_out',
        targetType: 'account',
        targetId: operatorLockedOut,
        data: { reason: 'leaked' },
      })
    }
    const revokedIds = new Set(revoked.map((row) => row.id))
    const results = digests.map((digest, index): LeakResult => {
      if (digest === null) return { index, status: 'malformed' }
      const row = byDigest.get(digest)
      if (!row) return { index, status: 'unknown' }
      const status = revokedIds.has(row.id) ? 'revoked' : 'already_revoked'
      return { index, status, tokenId: row.id, accountId: row.account_id }
    })
    return { results, revoked, operatorLockedOut }
  })
  if (operatorLockedOut) {
    deps.logger.error(
      { accountId: operatorLockedOut },
      'a leak report revoked the last active admin key of the operator account, which has no admin user: ' +
        'nobody can manage tokend until an operator with database access runs recover-operator (docs/operations.md)',
    )
  }

  await notifyAccounts(deps, revoked, source, foundAt)
  return { revoked: revoked.length, results }
}

async function notifyAccounts(
  deps: Deps,
  keys: Array<{ id: string; account_id: string; name: string; start: string; digest: string }>,
  source: LeakSource | undefined,
  foundAt: (digest: string) => string | undefined,
) {
  for (const [accountId, accountKeys] of groupBy(keys, (key) => key.account_id)) {
    try {
      await deps.mailer.send({
        to: await accountAdminEmails(deps.db, accountId),
        subject: `tokend: ${accountKeys.length} leaked key(s) revoked`,
        text: [
          `These access keys of your account were reported as leaked${source ? ` (by ${source.reporter})` : ''} and have been revoked:`,
          '',
          ...accountKeys.map((key) => {
            const url = foundAt(key.digest)
            return `  ${key.start}…  "${key.name}"  (${key.id})${url ? `  found at ${url}` : ''}`
          }),
          '',
          'Issue replacements for the services that used them.',
        ].join('\n'),
      })
    } catch (error) {
      deps.logger.error({ err: error, accountId }, 'leak notification not sent')
    }
  }
}

/** The operator account's id when `revoked` took its last way in (operator-access.ts), else null. */
async function lockedOutOperator(
  trx: Db,
  revoked: Array<{ account_id: string; role: string }>,
): Promise<string | null> {
  for (const accountId of new Set(revoked.filter((row) => row.role === 'admin').map((row) => row.account_id))) {
    if ((await lockOperator(trx, accountId)) && !(await operatorHasAccess(trx, accountId))) return accountId
  }
  return null
}
