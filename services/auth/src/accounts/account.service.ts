import { sql } from 'kysely'
import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction } from '../changes/change-events.ts'
import type { Db } from '../db/database.ts'
import type { AccountRow } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts'
import { newId } from '../ids.ts'
import { type Actor, metaFields, type Principal, type RequestMeta } from '../principal.ts'
import { countAttempt } from '../sessions/throttle.ts'
import { countKeysForLimits } from '../tokens/token.repository.ts'
import { createKey, type IssuedToken, issued, targetAccount } from '../tokens/token.service.ts'
import { insertUser } from '../users/user.repository.ts'
import { type UserInfo, userInfo } from '../users/user.service.ts'
import * as accounts from './account.repository.ts'
import { type Plan, planExpiry } from './plans.ts'

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

/** An account with its limits in use (SPEC §9): active keys and key creations in the current window. */
export interface AccountUsage extends AccountInfo {
  limits: {
    activeKeys: number
    maxActiveKeys: number
    creationsInWindow: number
    maxCreationsPerWindow: number
    creationWindowMs: number
  }
}

/** The caller's own account (any key or session of it), or any account for the operator. */
export async function getAccount(
  deps: Deps,
  principal: Principal,
  input: { accountId?: string | undefined },
): Promise<AccountUsage> {
  const accountId = targetAccount(principal, input.accountId)
  const row = await accounts.findAccount(deps.db, accountId)
  if (!row) throw new NotFoundError('account')
  const window = deps.config.TOKEND_KEY_CREATION_WINDOW_MS
  const counts = await countKeysForLimits(deps.db, accountId, window)
  return {
    ...accountInfo(row),
    limits: {
      activeKeys: counts.active,
      maxActiveKeys: deps.config.TOKEND_MAX_ACTIVE_KEYS,
      creationsInWindow: counts.recent,
      maxCreationsPerWindow: deps.config.TOKEND_KEY_CREATIONS_PER_MINUTE,
      creationWindowMs: window,
    },
  }
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
 * Self-service sign-up (SPEC §8): a `trial` account, its first admin user, and a trial
 * `test` key (plaintext returned once), all or nothing. Open or closed by configuration.
 */
export async function signup(
  deps: Deps,
  meta: RequestMeta,
  input: { accountName: string; username: string; email: string; password: string },
): Promise<{ account: AccountInfo; user: UserInfo; accessKey: IssuedToken }> {
  if (deps.config.TOKEND_SIGNUP !== 'open') {
    throw new ForbiddenError('sign-up is closed on this deployment; ask the platform team for an account')
  }
  // Each sign-up costs a hash and creates an account: counted per address like sign-ins.
  const limits = meta.address ? [{ key: `signup:${meta.address}`, max: deps.config.TOKEND_LOGIN_MAX_PER_ADDRESS }] : []
  await countAttempt(deps.db, limits, deps.config.TOKEND_LOGIN_WINDOW_S)
  const passwordHash = await deps.passwords.hash(input.password)
  return deps.db.transaction().execute(async (trx) => {
    const account = await accounts.insertAccount(trx, { id: newId('acc'), name: input.accountName, plan: 'trial' })
    const user = await insertUser(trx, {
      id: newId('usr'),
      account_id: account.id,
      username: input.username,
      email: input.email,
      password_hash: passwordHash,
      role: 'admin',
    })
    const { token, row } = await createKey(trx, deps.config.TOKEND_TOKEN_PREFIX, {
      accountId: account.id,
      environment: 'test',
      name: 'trial key',
      detail: 'created at sign-up',
      role: 'admin',
      scopes: [],
      expiresAt: planExpiry('trial', deps.config.TOKEND_TRIAL_KEY_DAYS, null),
      createdBy: user.id,
      rotatedFrom: null,
    })
    await recordAudit(
      trx,
      { type: 'user', id: user.id, ...metaFields(meta) },
      {
        accountId: account.id,
        action: 'auth.signup',
        targetType: 'account',
        targetId: account.id,
        data: { name: account.name, username: user.username, keyId: row.id },
      },
    )
    return { account: accountInfo(account), user: userInfo(user), accessKey: issued(token, row) }
  })
}

/**
 * Moves an account between plans. To paid: always. To trial: only without live keys or
 * links (trial accounts work in the sandbox), and its test keys are brought within the
 * trial's expiry bound. One account event re-reads the account everywhere.
 */
export async function setAccountPlan(
  deps: Deps,
  principal: Principal,
  actor: Actor,
  input: { accountId: string; plan: Plan },
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
    if (account.plan === input.plan) return account
    if (input.plan === 'trial') {
      if (account.operator) throw new ForbiddenError('the operator account stays on the paid plan')
      const live = await countLive(trx, account.id)
      if (live.keys > 0 || live.directs > 0) {
        throw new ConflictError(
          'conflict',
          `the account holds ${live.keys} live key(s) and ${live.directs} live direct link(s); revoke or delete them before moving it to trial`,
        )
      }
      const bound = planExpiry('trial', deps.config.TOKEND_TRIAL_KEY_DAYS, null) as Date
      await trx
        .updateTable('access_keys')
        .set({ expires_at: bound })
        .where('account_id', '=', account.id)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', bound)]))
        .execute()
    }
    const changed = await accounts.updateAccount(trx, account.id, { plan: input.plan })
    await announce({ type: 'account', accountId: account.id })
    await recordAudit(trx, actor, {
      accountId: account.id,
      action: 'account.set_plan',
      targetType: 'account',
      targetId: account.id,
      data: { from: account.plan, to: input.plan },
    })
    return changed
  })
  return accountInfo(row)
}

async function countLive(db: Db, accountId: string): Promise<{ keys: number; directs: number }> {
  const { rows } = await sql<{ keys: number; directs: number }>`
    select
      (select count(*)::int from access_keys where account_id = ${accountId} and environment = 'live'
        and revoked_at is null and (expires_at is null or expires_at > now())) as keys,
      (select count(*)::int from directs where account_id = ${accountId} and environment = 'live') as directs
  `.execute(db)
  return rows[0] ?? { keys: 0, directs: 0 }
}

export function requireOperator(principal: Principal, role?: 'admin'): void {
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
