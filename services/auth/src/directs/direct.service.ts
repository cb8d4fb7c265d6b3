import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { digestKey, type Environment } from '@tokend/keys'
import { findAccount } from '../accounts/account.repository.ts'
import { defaultEnvironment, requireEnvironmentAllowed } from '../accounts/plans.ts'
import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction } from '../changes/change-events.ts'
import type { DirectRow } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError, InvalidInputError, NotFoundError } from '../errors.ts'
import { newId } from '../ids.ts'
import { type Actor, anonymous, type Principal, principalId, type RequestMeta } from '../principal.ts'
import { DIRECT_LIFETIME_MS, signJwt } from '../sessions/jwt.ts'
import { requireAdmin, requireEnvironmentHeld, targetAccount } from '../tokens/token.service.ts'
import * as directs from './direct.repository.ts'

export const DIRECT_HASH_PREFIX = 'direct.'

/** A direct link as listings show it: never the hash or its digest. */
export interface DirectInfo {
  id: string
  accountId: string
  /** The non-secret first characters of the hash, to tell links apart. */
  start: string
  resourceType: string
  resourceId: string
  environment: Environment
  createdBy: string | null
  createdAt: string
}

export interface DirectContext {
  deps: Deps
  principal: Principal
  actor: Actor
}

/**
 * Creates a direct link to one resource: `direct.` + 256 random bits, returned once.
 * Only its SHA-256 digest is stored. The environment defaults to the account's plan's
 * (to `test` for a test key).
 */
export async function createDirect(
  { deps, principal, actor }: DirectContext,
  input: { resourceType: string; resourceId: string; environment?: Environment | undefined; accountId?: string },
): Promise<DirectInfo & { hash: string }> {
  requireAdmin(principal)
  const accountId = targetAccount(principal, input.accountId)
  const hash = `${DIRECT_HASH_PREFIX}${randomBytes(32).toString('base64url')}`
  const row = await deps.db.transaction().execute(async (trx) => {
    const account = await findAccount(trx, accountId)
    if (!account) throw new NotFoundError('account')
    if (account.status !== 'active') throw new ForbiddenError('the account is suspended')
    // A test key's links default to test, the only environment it may create in.
    const fallback = principal.kind === 'access_key' && principal.environment === 'test' ? 'test' : undefined
    const environment = input.environment ?? fallback ?? defaultEnvironment(account.plan)
    requireEnvironmentAllowed(account.plan, environment)
    requireEnvironmentHeld(principal, environment)
    const direct = await directs.insertDirect(trx, {
      id: newId('dir'),
      account_id: accountId,
      digest: digestKey(hash),
      start: hash.slice(0, DIRECT_HASH_PREFIX.length + 4),
      resource_type: input.resourceType,
      resource_id: input.resourceId,
      environment,
      created_by: principalId(principal),
    })
    await recordAudit(trx, actor, {
      accountId,
      action: 'direct.create',
      targetType: 'direct',
      targetId: direct.id,
      data: { resourceType: direct.resource_type, resourceId: direct.resource_id, environment },
    })
    return direct
  })
  return { ...directInfo(row), hash }
}

export async function listDirects(
  { deps, principal }: DirectContext,
  input: { limit: number; cursor?: string | undefined; accountId?: string | undefined },
): Promise<{ items: DirectInfo[]; nextCursor: string | null }> {
  const accountId = targetAccount(principal, input.accountId)
  const rows = await directs.listDirects(deps.db, { accountId, limit: input.limit + 1, cursor: input.cursor })
  const page = rows.slice(0, input.limit)
  return { items: page.map(directInfo), nextCursor: rows.length > input.limit ? (page.at(-1)?.id ?? null) : null }
}

/** Deletes a link: its hash no longer boots, and tokens booted from it are rejected on every replica. */
export async function deleteDirect(
  { deps, principal, actor }: DirectContext,
  id: string,
): Promise<{ id: string; deletedAt: string }> {
  requireAdmin(principal)
  await changeTransaction(deps, async (trx, announce) => {
    const direct = await directs.findDirect(trx, id)
    if (!direct) throw new NotFoundError('direct link')
    if (direct.account_id !== principal.accountId && !principal.operator) {
      throw new ForbiddenError('the direct link belongs to another account')
    }
    await directs.deleteDirect(trx, id)
    await announce({ type: 'direct', directId: id })
    await recordAudit(trx, actor, {
      accountId: direct.account_id,
      action: 'direct.delete',
      targetType: 'direct',
      targetId: id,
    })
  })
  return { id, deletedAt: new Date().toISOString() }
}

/**
 * Exchanges a direct hash for a JWT valid 4 hours that reaches only the link's resource.
 * The hash's shape was checked by the input schema; here an unknown hash and an
 * inactive account are told apart, both as 400 on `directHash`.
 */
export async function boot(
  deps: Deps,
  meta: RequestMeta,
  directHash: string,
): Promise<{
  token: string
  type: 'direct'
  resourceType: string
  resourceId: string
  accountId: string
  expiresAt: string
}> {
  const digest = digestKey(directHash)
  const found = await directs.findDirectByDigest(deps.db, digest)
  // The index found the row; compare the digest itself in constant time before trusting it.
  if (!found || !timingSafeEqual(Buffer.from(found.digest), Buffer.from(digest))) {
    throw new InvalidInputError(
      'the direct hash does not resolve to any resource: it was deleted or never existed',
      'directHash',
    )
  }
  if (found.account_status !== 'active') {
    throw new InvalidInputError("the direct hash's account is not active; its owner must reactivate it", 'directHash')
  }
  const { token, expiresAt } = await signJwt(deps, {
    kind: 'direct',
    subject: found.id,
    id: randomUUID(),
    accountId: found.account_id,
    lifetimeMs: DIRECT_LIFETIME_MS,
  })
  await recordAudit(deps.db, anonymous(meta), {
    accountId: found.account_id,
    action: 'auth.boot',
    targetType: 'direct',
    targetId: found.id,
  })
  return {
    token,
    type: 'direct',
    resourceType: found.resource_type,
    resourceId: found.resource_id,
    accountId: found.account_id,
    expiresAt: expiresAt.toISOString(),
  }
}

function directInfo(row: DirectRow): DirectInfo {
  return {
    id: row.id,
    accountId: row.account_id,
    start: row.start,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    environment: row.environment,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
  }
}
