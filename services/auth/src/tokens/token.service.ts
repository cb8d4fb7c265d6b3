import { digestKey, type Environment, generateKey, parseKey } from '@tokend/keys'
import { keepOperatorAccess } from '../accounts/operator-access.ts'
import { planExpiry, requireEnvironmentAllowed } from '../accounts/plans.ts'
import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction, keyChange } from '../changes/change-events.ts'
import type { Config } from '../config.ts'
import { type Credits, type CreditsInfo, copyCredits, readCreditsOf, writeCredits } from '../credits/credits.ts'
import type { Db } from '../db/database.ts'
import type { AccessKeyRow, AccessKeyUpdate, AccountRow } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import {
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  TokenLimitError,
  TokenRevokedError,
} from '../errors.ts'
import { newId } from '../ids.ts'
import { type Actor, type Principal, principalId, type Role, TOKEND_SCOPES } from '../principal.ts'
import * as keys from './token.repository.ts'

export type ExpiresIn = '30d' | '90d' | '1y' | 'never'
export type TokenStatus = 'active' | 'disabled' | 'expired' | 'revoked'

/** A key as listings show it: never the secret or its digest. */
export interface TokenInfo {
  id: string
  accountId: string
  start: string
  name: string
  detail: string | null
  environment: Environment
  role: Role
  scopes: string[]
  status: TokenStatus
  createdAt: string
  expiresAt: string | null
  lastUsedAt: string | null
  revokedAt: string | null
  disabled: boolean
  rotatedFrom: string | null
  meta: Record<string, unknown> | null
  allowedCidrs: string[]
  /** Present for a key with usage credits; `remaining` is what replicas have not leased (docs/credits.md). */
  credits?: NonNullable<CreditsInfo>
}

/** The answer of the calls that create a key: the only place the plaintext ever appears. */
export interface IssuedToken {
  token: string
  id: string
  accountId: string
  start: string
  name: string
  detail: string | null
  environment: Environment
  role: Role
  scopes: string[]
  expiresAt: string | null
  createdAt: string
  rotatedFrom: string | null
  meta: Record<string, unknown> | null
  allowedCidrs: string[]
  /** Present for a key with usage credits. */
  credits?: NonNullable<CreditsInfo>
}

export interface IssueInput {
  name: string
  detail?: string | undefined
  environment: Environment
  role?: Role | undefined
  scopes?: string[] | undefined
  expiresIn?: ExpiresIn | undefined
  expiresAt?: string | undefined
  accountId?: string | undefined
  meta?: Record<string, unknown> | undefined
  allowedCidrs?: string[] | undefined
  credits?: Credits | undefined
}

/** token.update's input: the fields to change; the expiry may only move closer. */
export interface UpdateInput {
  id: string
  name?: string | undefined
  detail?: string | null | undefined
  scopes?: string[] | undefined
  meta?: Record<string, unknown> | null | undefined
  allowedCidrs?: string[] | undefined
  expiresAt?: string | undefined
  /** New usage credits (remaining and refill), or null to remove them. */
  credits?: Credits | null | undefined
}

const DAY_MS = 86_400_000
const EXPIRES_IN_MS: Record<ExpiresIn, number | null> = {
  '30d': 30 * DAY_MS,
  '90d': 90 * DAY_MS,
  '1y': 365 * DAY_MS,
  never: null,
}

/** A context for every token operation: who acts, from where, on which deps. */
export interface TokenContext {
  deps: Deps
  principal: Principal
  actor: Actor
}

export async function issueToken({ deps, principal, actor }: TokenContext, input: IssueInput): Promise<IssuedToken> {
  requireAdmin(principal)
  const accountId = targetAccount(principal, input.accountId)
  const role = input.role ?? 'manager'
  const scopes = [...new Set(input.scopes ?? [])]
  checkGrant(principal, role, scopes)

  return deps.db.transaction().execute(async (trx) => {
    const account = await reserveKeyCreation(trx, deps.config, accountId)
    requireEnvironmentAllowed(account.plan, input.environment)
    requireEnvironmentHeld(principal, input.environment)
    const expiresAt = planExpiry(account.plan, deps.config.TOKEND_TRIAL_KEY_DAYS, resolveExpiry(input))
    const { token, row } = await createKey(trx, deps.config.TOKEND_TOKEN_PREFIX, {
      accountId,
      environment: input.environment,
      name: input.name,
      detail: input.detail ?? null,
      role,
      scopes,
      expiresAt,
      createdBy: principalId(principal),
      rotatedFrom: null,
      meta: input.meta ?? null,
      allowedCidrs: input.allowedCidrs ?? [],
    })
    const credits = input.credits ? await writeCredits(trx, row.id, input.credits, deps.credits.now) : null
    await recordAudit(trx, actor, {
      accountId,
      action: 'token.issue',
      targetType: 'access_key',
      targetId: row.id,
      data: {
        name: row.name,
        environment: row.environment,
        role,
        scopes,
        expiresAt: iso(expiresAt),
        ...(row.allowed_cidrs.length > 0 && { allowedCidrs: row.allowed_cidrs }),
        ...(credits && { credits }),
      },
    })
    return issued(token, row, credits)
  })
}

export async function listTokens(
  { deps, principal }: TokenContext,
  input: {
    environment?: Environment
    status: keys.TokenStatusFilter
    expiringWithin?: number
    unusedFor?: number
    limit: number
    cursor?: string
    accountId?: string
  },
): Promise<{ items: TokenInfo[]; nextCursor: string | null }> {
  const accountId = targetAccount(principal, input.accountId)
  const rows = await keys.listKeys(deps.db, { ...input, accountId, limit: input.limit + 1 })
  const page = rows.slice(0, input.limit)
  const credits = await readCreditsOf(
    deps.db,
    page.map((row) => row.id),
  )
  return {
    items: page.map((row) => tokenInfo(row, credits.get(row.id))),
    nextCursor: rows.length > input.limit ? (page.at(-1)?.id ?? null) : null,
  }
}

export async function getToken({ deps, principal }: TokenContext, id: string): Promise<TokenInfo> {
  const row = owned(principal, await keys.findKeyById(deps.db, id))
  return tokenInfo(row, (await readCreditsOf(deps.db, [row.id])).get(row.id))
}

export async function revokeToken(
  { deps, principal, actor }: TokenContext,
  id: string,
): Promise<{ id: string; revokedAt: string }> {
  requireAdmin(principal)
  const row = await changeTransaction(deps, async (trx, announce) => {
    const current = owned(principal, await keys.findKeyById(trx, id, { forUpdate: true }))
    if (current.revoked_at) return current
    const revoked = await keys.updateKey(trx, id, { revoked_at: new Date() })
    await keepOperatorAccess(trx, revoked)
    await announce(keyChange(revoked))
    await recordAudit(trx, actor, {
      accountId: revoked.account_id,
      action: 'token.revoke',
      targetType: 'access_key',
      targetId: id,
    })
    return revoked
  })
  return { id: row.id, revokedAt: (row.revoked_at as Date).toISOString() }
}

export async function setTokenDisabled(
  { deps, principal, actor }: TokenContext,
  id: string,
  disabled: boolean,
): Promise<TokenInfo> {
  requireAdmin(principal)
  const row = await changeTransaction(deps, async (trx, announce) => {
    const current = owned(principal, await keys.findKeyById(trx, id, { forUpdate: true }))
    if (current.revoked_at) throw new TokenRevokedError()
    if (current.disabled === disabled) return current
    const changed = await keys.updateKey(trx, id, { disabled })
    if (disabled) await keepOperatorAccess(trx, changed)
    await announce(keyChange(changed))
    await recordAudit(trx, actor, {
      accountId: changed.account_id,
      action: disabled ? 'token.disable' : 'token.enable',
      targetType: 'access_key',
      targetId: id,
    })
    return changed
  })
  return tokenInfo(row, (await readCreditsOf(deps.db, [row.id])).get(row.id))
}

export async function rotateToken(
  { deps, principal, actor }: TokenContext,
  input: { id: string; oldExpiresIn?: number | undefined },
): Promise<IssuedToken> {
  requireAdmin(principal)
  const { token, row, credits } = await changeTransaction(deps, async (trx, announce) => {
    let old = owned(principal, await keys.findKeyById(trx, input.id, { forUpdate: true }))
    if (old.revoked_at) throw new TokenRevokedError()
    checkGrant(principal, old.role, old.scopes)
    const account = await reserveKeyCreation(trx, deps.config, old.account_id)
    requireEnvironmentAllowed(account.plan, old.environment)
    requireEnvironmentHeld(principal, old.environment)
    const now = Date.now()
    // The new key lives as long as the old one was meant to, counted from now (within the plan's bound).
    const lifetime = old.expires_at ? old.expires_at.getTime() - old.created_at.getTime() : null
    const expiresAt = planExpiry(
      account.plan,
      deps.config.TOKEND_TRIAL_KEY_DAYS,
      lifetime === null ? null : new Date(now + lifetime),
      now,
    )
    const created = await createKey(trx, deps.config.TOKEND_TOKEN_PREFIX, {
      accountId: old.account_id,
      environment: old.environment,
      name: old.name,
      detail: old.detail,
      role: old.role,
      scopes: old.scopes,
      expiresAt,
      createdBy: principalId(principal),
      rotatedFrom: old.id,
      // The successor is the same key under a new secret: same metadata, same networks.
      meta: old.meta,
      allowedCidrs: old.allowed_cidrs,
    })
    // The successor gets the old key's credits as they stand (its own budget from now on).
    const credits = await copyCredits(trx, old.id, created.row.id)
    // The old key's expiry may only move closer, never further away.
    if (input.oldExpiresIn !== undefined) {
      const shortened = new Date(now + input.oldExpiresIn * 1000)
      if (!old.expires_at || shortened < old.expires_at) {
        old = await keys.updateKey(trx, old.id, { expires_at: shortened })
        // The new key normally keeps the way in open; this holds the rule on every path.
        await keepOperatorAccess(trx, old)
        await announce(keyChange(old))
      }
    }
    await recordAudit(trx, actor, {
      accountId: old.account_id,
      action: 'token.rotate',
      targetType: 'access_key',
      targetId: created.row.id,
      data: { rotatedFrom: old.id, oldExpiresAt: iso(old.expires_at) },
    })
    return { ...created, credits }
  })
  return issued(token, row, credits)
}

/**
 * token.update (SPEC §14): name, detail, scopes, meta, networks, and an expiry that may
 * only move closer. Every update is a change event, sent as revoke sends it: once the
 * call returns this replica serves only the new entry, and the others drop the old one
 * as soon as the event reaches them — a narrowed key is never served wider again.
 */
export async function updateToken({ deps, principal, actor }: TokenContext, input: UpdateInput): Promise<TokenInfo> {
  requireAdmin(principal)
  const row = await changeTransaction(deps, async (trx, announce) => {
    const current = owned(principal, await keys.findKeyById(trx, input.id, { forUpdate: true }))
    if (current.revoked_at) throw new TokenRevokedError()
    const changes: AccessKeyUpdate = {}
    if (input.name !== undefined) changes.name = input.name
    if (input.detail !== undefined) changes.detail = input.detail
    if (input.scopes !== undefined) {
      const scopes = [...new Set(input.scopes)]
      // Only what the key gains needs the updater to hold it; keeping a reserved scope does not.
      checkGrant(
        principal,
        current.role,
        scopes.filter((scope) => !current.scopes.includes(scope)),
      )
      changes.scopes = scopes
    }
    if (input.meta !== undefined) changes.meta = input.meta === null ? null : JSON.stringify(input.meta)
    if (input.allowedCidrs !== undefined) changes.allowed_cidrs = input.allowedCidrs
    if (input.expiresAt !== undefined) {
      const expiresAt = new Date(input.expiresAt)
      if (current.expires_at !== null && expiresAt > current.expires_at) {
        throw new InvalidInputError(
          `the expiry may only move closer: the key expires at ${current.expires_at.toISOString()}`,
          'expiresAt',
        )
      }
      changes.expires_at = expiresAt
    }
    // Credits alone live in their own table: the key's row stays as it is.
    const updated = Object.keys(changes).length > 0 ? await keys.updateKey(trx, current.id, changes) : current
    await keepOperatorAccess(trx, updated)
    // Replicas hand back their leases on this event and lease afresh from the new credits.
    if (input.credits !== undefined) await writeCredits(trx, updated.id, input.credits, deps.credits.now)
    await announce(keyChange(updated))
    await recordAudit(trx, actor, {
      accountId: updated.account_id,
      action: 'token.update',
      targetType: 'access_key',
      targetId: updated.id,
      data: {
        changed: Object.keys(input).filter((field) => field !== 'id'),
        ...(changes.name !== undefined && { name: updated.name }),
        ...(changes.scopes !== undefined && { scopes: updated.scopes, previousScopes: current.scopes }),
        ...(changes.allowed_cidrs !== undefined && { allowedCidrs: updated.allowed_cidrs }),
        ...(input.credits !== undefined && { credits: input.credits }),
        ...(changes.expires_at !== undefined && {
          expiresAt: iso(updated.expires_at),
          previousExpiresAt: iso(current.expires_at),
        }),
      },
    })
    return updated
  })
  return tokenInfo(row, (await readCreditsOf(deps.db, [row.id])).get(row.id))
}

/**
 * Checks the account may get one more key (SPEC §9): active, under the active-key
 * limit and under the creations-per-minute limit. The account row stays locked until
 * the transaction ends, so calls racing on any number of replicas take turns and
 * never create a 21st key. Returns the account.
 */
async function reserveKeyCreation(
  trx: Db,
  limits: Pick<Config, 'TOKEND_MAX_ACTIVE_KEYS' | 'TOKEND_KEY_CREATIONS_PER_MINUTE' | 'TOKEND_KEY_CREATION_WINDOW_MS'>,
  accountId: string,
): Promise<AccountRow> {
  const account = await trx
    .selectFrom('accounts')
    .selectAll()
    .where('id', '=', accountId)
    .forUpdate()
    .executeTakeFirst()
  if (!account) throw new NotFoundError('account')
  if (account.status !== 'active') throw new ForbiddenError('the account is suspended')
  const window = limits.TOKEND_KEY_CREATION_WINDOW_MS
  const counts = await keys.countKeysForLimits(trx, accountId, window)
  if (counts.active >= limits.TOKEND_MAX_ACTIVE_KEYS) throw new TokenLimitError(limits.TOKEND_MAX_ACTIVE_KEYS)
  if (counts.recent >= limits.TOKEND_KEY_CREATIONS_PER_MINUTE) {
    const retryAfterMs = Math.max(1_000, (counts.oldest_recent?.getTime() ?? Date.now()) + window - Date.now())
    throw new RateLimitedError(
      `at most ${limits.TOKEND_KEY_CREATIONS_PER_MINUTE} keys may be created per minute for an account`,
      retryAfterMs,
    )
  }
  return account
}

export async function createKey(
  db: Db,
  prefix: string,
  key: {
    accountId: string
    environment: Environment
    name: string
    detail: string | null
    role: Role
    scopes: string[]
    expiresAt: Date | null
    createdBy: string | null
    rotatedFrom: string | null
    meta?: Record<string, unknown> | null
    allowedCidrs?: string[]
  },
): Promise<{ token: string; row: AccessKeyRow }> {
  const token = generateKey(prefix, key.environment)
  const parsed = parseKey(token, prefix)
  if (!parsed) throw new Error('generated a key that does not parse')
  const row = await keys.insertKey(db, {
    id: newId('tok'),
    account_id: key.accountId,
    digest: digestKey(token),
    start: parsed.start,
    environment: key.environment,
    name: key.name,
    detail: key.detail,
    role: key.role,
    scopes: key.scopes,
    expires_at: key.expiresAt,
    revoked_at: null,
    last_used_at: null,
    created_by: key.createdBy,
    rotated_from: key.rotatedFrom,
    meta: key.meta ? JSON.stringify(key.meta) : null,
    allowed_cidrs: key.allowedCidrs ?? [],
  })
  return { token, row }
}

export function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new ForbiddenError('this needs an admin key')
}

/**
 * A credential's environment bounds what it creates: a `test` key creates nothing that
 * works in `live` (keys, direct links, people of a paid account, who sign in to live).
 * Sessions carry their account's environment, which the plan already bounds (SPEC §7).
 */
export function requireEnvironmentHeld(principal: Principal, environment: Environment): void {
  if (principal.kind === 'access_key' && principal.environment === 'test' && environment === 'live') {
    throw new ForbiddenError('a test key creates only test credentials; use a live key or a session for live ones')
  }
}

/** The account a call acts on: the caller's own, or any for the operator account. */
export function targetAccount(principal: Principal, accountId: string | undefined): string {
  if (accountId === undefined || accountId === principal.accountId) return principal.accountId
  if (!principal.operator) throw new ForbiddenError('only the operator account may act on other accounts')
  return accountId
}

/** 404 for nothing, 403 for another account's object (operators may see every account). */
function owned(principal: Principal, row: AccessKeyRow | undefined): AccessKeyRow {
  if (!row) throw new NotFoundError('token')
  if (row.account_id !== principal.accountId && !principal.operator) {
    throw new ForbiddenError('the token belongs to another account')
  }
  return row
}

/** A key never grants more than its creator holds: no higher role, no reserved scope it lacks. */
function checkGrant(principal: Principal, role: Role, scopes: readonly string[]): void {
  if (role === 'admin' && principal.role !== 'admin') throw new ForbiddenError('cannot grant a role above your own')
  for (const scope of scopes) {
    if (!scope.startsWith('tokend:')) continue
    if (!(TOKEND_SCOPES as readonly string[]).includes(scope)) {
      throw new InvalidInputError(`unknown reserved scope "${scope}"`)
    }
    if (!principal.scopes.includes(scope)) throw new ForbiddenError(`cannot grant "${scope}" without holding it`)
  }
}

function resolveExpiry(input: IssueInput): Date | null {
  if (input.expiresAt !== undefined) return new Date(input.expiresAt)
  const ms = EXPIRES_IN_MS[input.expiresIn ?? 'never']
  return ms === null ? null : new Date(Date.now() + ms)
}

export function tokenStatus(row: AccessKeyRow, now = Date.now()): TokenStatus {
  if (row.revoked_at) return 'revoked'
  if (row.expires_at && row.expires_at.getTime() <= now) return 'expired'
  if (row.disabled) return 'disabled'
  return 'active'
}

function tokenInfo(row: AccessKeyRow, credits?: CreditsInfo): TokenInfo {
  const info: TokenInfo = {
    id: row.id,
    accountId: row.account_id,
    start: row.start,
    name: row.name,
    detail: row.detail,
    environment: row.environment,
    role: row.role,
    scopes: row.scopes,
    status: tokenStatus(row),
    createdAt: row.created_at.toISOString(),
    expiresAt: iso(row.expires_at),
    lastUsedAt: iso(row.last_used_at),
    revokedAt: iso(row.revoked_at),
    disabled: row.disabled,
    rotatedFrom: row.rotated_from,
    meta: row.meta,
    allowedCidrs: row.allowed_cidrs,
  }
  if (credits) info.credits = credits
  return info
}

export function issued(token: string, row: AccessKeyRow, credits: CreditsInfo = null): IssuedToken {
  const answer: IssuedToken = {
    token,
    id: row.id,
    accountId: row.account_id,
    start: row.start,
    name: row.name,
    detail: row.detail,
    environment: row.environment,
    role: row.role,
    scopes: row.scopes,
    expiresAt: iso(row.expires_at),
    createdAt: row.created_at.toISOString(),
    rotatedFrom: row.rotated_from,
    meta: row.meta,
    allowedCidrs: row.allowed_cidrs,
  }
  if (credits) answer.credits = credits
  return answer
}

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null
}
