import { findAccount } from '../accounts/account.repository.ts'
import { defaultEnvironment } from '../accounts/plans.ts'
import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction } from '../changes/change-events.ts'
import type { UserRow } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { ConflictError, ForbiddenError, NotFoundError } from '../errors.ts'
import { newId } from '../ids.ts'
import type { Actor, Principal, Role } from '../principal.ts'
import { requireAdmin, requireEnvironmentHeld, targetAccount } from '../tokens/token.service.ts'
import * as users from './user.repository.ts'

/** A user as listings show it: never the password hash. */
export interface UserInfo {
  id: string
  accountId: string
  username: string
  email: string
  role: Role
  createdAt: string
}

export interface UserContext {
  deps: Deps
  principal: Principal
  actor: Actor
}

export async function createUser(
  { deps, principal, actor }: UserContext,
  input: { username: string; email: string; password: string; role: Role; accountId?: string | undefined },
): Promise<UserInfo> {
  requireAdmin(principal)
  const accountId = targetAccount(principal, input.accountId)
  const account = await findAccount(deps.db, accountId)
  if (!account) throw new NotFoundError('account')
  requireEnvironmentHeld(principal, defaultEnvironment(account.plan))
  const passwordHash = await deps.passwords.hash(input.password)
  const row = await deps.db.transaction().execute(async (trx) => {
    const user = await users.insertUser(trx, {
      id: newId('usr'),
      account_id: accountId,
      username: input.username,
      email: input.email,
      password_hash: passwordHash,
      role: input.role,
    })
    await recordAudit(trx, actor, {
      accountId,
      action: 'user.create',
      targetType: 'user',
      targetId: user.id,
      data: { username: user.username, role: user.role },
    })
    return user
  })
  return userInfo(row)
}

export async function listUsers(
  { deps, principal }: UserContext,
  input: { limit: number; cursor?: string | undefined; accountId?: string | undefined },
): Promise<{ items: UserInfo[]; nextCursor: string | null }> {
  const accountId = targetAccount(principal, input.accountId)
  const rows = await users.listUsers(deps.db, { accountId, limit: input.limit + 1, cursor: input.cursor })
  const page = rows.slice(0, input.limit)
  return { items: page.map(userInfo), nextCursor: rows.length > input.limit ? (page.at(-1)?.id ?? null) : null }
}

/** Changes a user's role; their sessions carry the new role at once, on every replica. */
export async function setUserRole(
  { deps, principal, actor }: UserContext,
  input: { id: string; role: Role },
): Promise<UserInfo> {
  requireAdmin(principal)
  const row = await changeTransaction(deps, async (trx, announce) => {
    const user = owned(principal, await users.findUser(trx, input.id))
    const account = await findAccount(trx, user.account_id)
    if (account) requireEnvironmentHeld(principal, defaultEnvironment(account.plan))
    if (user.role === input.role) return user
    await keepAnAdmin(trx, user)
    const changed = await users.updateUserRole(trx, user.id, input.role)
    await announce({ type: 'user', userId: user.id })
    await recordAudit(trx, actor, {
      accountId: user.account_id,
      action: 'user.set_role',
      targetType: 'user',
      targetId: user.id,
      data: { from: user.role, to: input.role },
    })
    return changed
  })
  return userInfo(row)
}

/** Removes a user and its sessions; their tokens are rejected at once, on every replica. */
export async function removeUser(
  { deps, principal, actor }: UserContext,
  id: string,
): Promise<{ id: string; removedAt: string }> {
  requireAdmin(principal)
  await changeTransaction(deps, async (trx, announce) => {
    const user = owned(principal, await users.findUser(trx, id))
    await keepAnAdmin(trx, user)
    await users.deleteUser(trx, user.id)
    await announce({ type: 'user', userId: user.id })
    await recordAudit(trx, actor, {
      accountId: user.account_id,
      action: 'user.remove',
      targetType: 'user',
      targetId: user.id,
      data: { username: user.username },
    })
  })
  return { id, removedAt: new Date().toISOString() }
}

/** An account keeps at least one admin user, so someone can always sign in to manage it. */
async function keepAnAdmin(trx: Deps['db'], user: UserRow): Promise<void> {
  if (user.role !== 'admin') return
  const admins = await users.lockAdmins(trx, user.account_id)
  if (admins.length <= 1) {
    throw new ConflictError('conflict', 'an account keeps at least one admin user; make another user admin first')
  }
}

function owned(principal: Principal, row: UserRow | undefined): UserRow {
  if (!row) throw new NotFoundError('user')
  if (row.account_id !== principal.accountId && !principal.operator) {
    throw new ForbiddenError('the user belongs to another account')
  }
  return row
}

export function userInfo(row: UserRow): UserInfo {
  return {
    id: row.id,
    accountId: row.account_id,
    username: row.username,
    email: row.email,
    role: row.role,
    createdAt: row.created_at.toISOString(),
  }
}
