import { requireOperator } from '../accounts/account.service.ts'
import { recordAudit } from '../audit/audit.repository.ts'
import { changeTransaction } from '../changes/change-events.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError, InvalidCredentialsError } from '../errors.ts'
import { newId } from '../ids.ts'
import { type Actor, anonymous, metaFields, type Principal, type RequestMeta } from '../principal.ts'
import { findUserForLogin } from '../users/user.repository.ts'
import { SESSION_LIFETIME_MS, signJwt } from './jwt.ts'
import { findSession, insertSession, revokeSession } from './session.repository.ts'
import { rotateSigningKeys } from './signing-keys.ts'
import { clearAttempts, countAttempt, type Limit } from './throttle.ts'

/**
 * Signs a user in: a session JWT valid 7 days. An unknown username and a wrong password
 * take the same path — throttle counts, one query, one argon2 verification (against a
 * dummy hash when there is no user), one audit row — and give the same 401.
 */
export async function login(
  deps: Deps,
  meta: RequestMeta,
  input: { username: string; password: string },
): Promise<{ username: string; token: string; expiresAt: string }> {
  const { db } = deps
  await throttleLogin(deps, meta, input.username)

  const user = await findUserForLogin(db, input.username)
  const matches = await deps.passwords.verify(user?.password_hash ?? null, input.password)
  if (!user || !matches) {
    // No account reference for a username nobody holds; never the password.
    await recordAudit(db, anonymous(meta), {
      accountId: user?.account_id ?? null,
      action: 'auth.login_failed',
      targetType: 'user',
      targetId: user?.id ?? null,
      data: { username: input.username, why: user ? 'wrong_password' : 'unknown_user' },
    })
    throw new InvalidCredentialsError()
  }
  if (user.account_status !== 'active') {
    await recordAudit(db, anonymous(meta), {
      accountId: user.account_id,
      action: 'auth.login_failed',
      targetType: 'user',
      targetId: user.id,
      data: { username: user.username, why: 'account_suspended' },
    })
    throw new ForbiddenError('the account is suspended')
  }

  const sessionId = newId('ses')
  const { token, expiresAt } = await signJwt(deps, {
    kind: 'session',
    subject: user.id,
    id: sessionId,
    accountId: user.account_id,
    lifetimeMs: SESSION_LIFETIME_MS,
  })
  await db.transaction().execute(async (trx) => {
    await insertSession(trx, {
      id: sessionId,
      userId: user.id,
      accountId: user.account_id,
      expiresAt,
      address: meta.address,
      userAgent: meta.userAgent,
    })
    await recordAudit(
      trx,
      { type: 'user', id: user.id, ...metaFields(meta) },
      { accountId: user.account_id, action: 'auth.login', targetType: 'session', targetId: sessionId },
    )
  })
  await clearAttempts(db, [pairKey(input.username, meta), `user:${input.username}`])
  return { username: user.username, token, expiresAt: expiresAt.toISOString() }
}

/**
 * Counts a sign-in attempt (SPEC §9). Per username *and* address first, so a stranger
 * guessing a user's password runs out of tries without locking the user out; and per
 * address, against one client spraying many usernames. Only attempts those let through
 * count toward the username's own, higher ceiling, which bounds guessing spread over
 * many addresses: one address adds at most TOKEND_LOGIN_MAX_PER_PAIR to it.
 */
async function throttleLogin(deps: Deps, meta: RequestMeta, username: string): Promise<void> {
  const { config, db } = deps
  const limits: Limit[] = [{ key: pairKey(username, meta), max: config.TOKEND_LOGIN_MAX_PER_PAIR }]
  if (meta.address) limits.push({ key: `addr:${meta.address}`, max: config.TOKEND_LOGIN_MAX_PER_ADDRESS })
  await countAttempt(db, limits, config.TOKEND_LOGIN_WINDOW_S)
  await countAttempt(
    db,
    [{ key: `user:${username}`, max: config.TOKEND_LOGIN_MAX_PER_USERNAME }],
    config.TOKEND_LOGIN_WINDOW_S,
  )
}

/** The throttle key of a username from one address (no address holds a space); a successful sign-in clears it. */
function pairKey(username: string, meta: RequestMeta): string {
  return `pair:${meta.address ?? '-'} ${username}`
}

/** Ends the caller's session on every replica (a `session` change event). */
export async function logout(
  deps: Deps,
  principal: Principal,
  actor: Actor,
): Promise<{ sessionId: string; revokedAt: string }> {
  if (principal.kind !== 'session') {
    throw new ForbiddenError('logout ends a session: call it with the session token, not an access key')
  }
  const row = await changeTransaction(deps, async (trx, announce) => {
    const session = await findSession(trx, principal.sessionId, { forUpdate: true })
    if (!session) throw new ForbiddenError('the session no longer exists')
    if (session.revoked_at) return session
    const revoked = await revokeSession(trx, session.id)
    await announce({ type: 'session', sessionId: session.id })
    await recordAudit(trx, actor, {
      accountId: session.account_id,
      action: 'auth.logout',
      targetType: 'session',
      targetId: session.id,
    })
    return revoked
  })
  return { sessionId: row.id, revokedAt: (row.revoked_at as Date).toISOString() }
}

/** Operator: a new signing key signs from now on; the old ones verify until their tokens expire. */
export async function rotateSigningKey(
  deps: Deps,
  principal: Principal,
  actor: Actor,
): Promise<{ kid: string; createdAt: string }> {
  requireOperator(principal, 'admin')
  const created = await changeTransaction(deps, async (trx, announce) => {
    const key = await rotateSigningKeys(trx)
    await announce({ type: 'signing_keys' })
    await recordAudit(trx, actor, {
      accountId: principal.accountId,
      action: 'signing_key.rotate',
      targetType: 'signing_key',
      targetId: key.id,
    })
    return key
  })
  return { kid: created.id, createdAt: created.created_at.toISOString() }
}

export async function listSigningKeys(
  deps: Deps,
  principal: Principal,
): Promise<Array<{ kid: string; createdAt: string; retiredAt: string | null; signing: boolean }>> {
  requireOperator(principal)
  const rows = await deps.db
    .selectFrom('signing_keys')
    .select(['id', 'created_at', 'retired_at'])
    .orderBy('id', 'desc')
    .execute()
  return rows.map((row) => ({
    kid: row.id,
    createdAt: row.created_at.toISOString(),
    retiredAt: row.retired_at?.toISOString() ?? null,
    signing: row.retired_at === null,
  }))
}
