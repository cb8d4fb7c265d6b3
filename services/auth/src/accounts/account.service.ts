import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction } from '../changes/change-events.ts'
import type { Db } from '../db/database.ts'
import type { AccountRow } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError, NotFoundError } from '../errors.ts'
import { newId } from '../ids.ts'
import { type Actor, type Principal, SYSTEM_ACTOR, TOKEND_SCOPES } from '../principal.ts'
import { createKey } from '../tokens/token.service.ts'
import * as accounts from './account.repository.ts'

export interface AccountInfo {
  id: string
  name: string
  plan: 'trial' | 'paid'
  status: 'active' | 'suspended'
  operator: boolean
  createdAt: string
}

export async function createAccount(
  deps: Deps,
  principal: Principal,
  actor: Actor,
  input: { name: string; plan: 'trial' | 'paid' },
): Promise<AccountInfo> {
  requireOperator(principal, 'admin')
  const row = await deps.db.transaction().execute(async (trx) => {
    const account = await accounts.insertAccount(trx, { id: newId('acc'), name: input.name, plan: input.plan })
    await recordAudit(trx, actor, {
      accountId: account.id,
      action: 'account.create',
      targetType: 'account',
      targetId: account.id,
      data: { name: account.name, plan: account.plan },
    })
    return account
  })
  return accountInfo(row)
}

export async function listAccounts(
  deps: Deps,
  principal: Principal,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: AccountInfo[]; nextCursor: string | null }> {
  requireOperator(principal)
  const rows = await accounts.listAccounts(deps.db, { limit: page.limit + 1, cursor: page.cursor })
  const items = rows.slice(0, page.limit)
  return { items: items.map(accountInfo), nextCursor: rows.length > page.limit ? (items.at(-1)?.id ?? null) : null }
}

/**
 * Suspends or reactivates an account. Suspension rejects every key of the account on
 * every replica at once: one account-wide change event, however many keys it has.
 */
export async function setAccountStatus(
  deps: Deps,
  principal: Principal,
  actor: Actor,
  input: { accountId: string; status: 'active' | 'suspended' },
): Promise<AccountInfo> {
  requireOperator(principal, 'admin')
  const row = await changeTransaction(deps, async (trx, announce) => {
    const account = await trx
      .selectFrom('accounts')
      .selectAll()
      .where('id', '=', input.accountId)
      .forUpdate()
      .executeTakeFirst()
    if (!account) throw new NotFoundError('account')
    if (account.operator) throw new ForbiddenError('the operator account cannot be suspended')
    if (account.status === input.status) return account
    const changed = await accounts.updateAccount(trx, account.id, { status: input.status })
    await announce({ type: 'account', accountId: account.id })
    await recordAudit(trx, actor, {
      accountId: account.id,
      action: input.status === 'suspended' ? 'account.suspend' : 'account.reactivate',
      targetType: 'account',
      targetId: account.id,
    })
    return changed
  })
  return accountInfo(row)
}

/**
 * On an empty database: creates the operator account and its first admin key with
 * every reserved scope. Returns the plaintext, or null when the operator exists.
 * Runs under the start-up lock, so concurrent replicas bootstrap exactly once.
 */
export async function bootstrap(db: Db, prefix: string): Promise<{ token: string; accountId: string } | null> {
  if (await accounts.findOperatorAccount(db)) return null
  return db.transaction().execute(async (trx) => {
    const account = await accounts.insertAccount(trx, {
      id: newId('acc'),
      name: 'operator',
      plan: 'paid',
      operator: true,
    })
    const { token, row } = await createKey(trx, prefix, {
      accountId: account.id,
      environment: 'live',
      name: 'bootstrap admin',
      detail: 'created on first start; rotate it once you have issued your own keys',
      role: 'admin',
      scopes: [...TOKEND_SCOPES],
      expiresAt: null,
      createdBy: null,
      rotatedFrom: null,
    })
    await recordAudit(trx, SYSTEM_ACTOR, {
      accountId: account.id,
      action: 'account.bootstrap',
      targetType: 'access_key',
      targetId: row.id,
    })
    return { token, accountId: account.id }
  })
}

function requireOperator(principal: Principal, role?: 'admin'): void {
  if (!principal.operator) throw new ForbiddenError('only the operator account may manage accounts')
  if (role && principal.role !== role) throw new ForbiddenError('this needs an admin key')
}

function accountInfo(row: AccountRow): AccountInfo {
  return {
    id: row.id,
    name: row.name,
    plan: row.plan,
    status: row.status,
    operator: row.operator,
    createdAt: row.created_at.toISOString(),
  }
}
