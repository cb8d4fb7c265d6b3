import { type DenialReason, digestBytes, type Environment, parseKey } from '@tokend/keys'
import { z } from 'zod'
import { cacheKey } from '../cache/cache-key.ts'
import type { KeyRecord } from '../cache/key-record.ts'
import { chargeCredits } from '../credits/charge.ts'
import { cost } from '../credits/credits.ts'
import type { Deps } from '../deps.ts'
import { ForbiddenError, IpNotAllowedError } from '../errors.ts'
import { andThen, isPromise, type MaybePromise } from '../maybe-promise.ts'
import type { AccessKeyPrincipal, Credential, Principal, Role } from '../principal.ts'
import { checkJwt, looksLikeJwt } from '../sessions/jwt.ts'
import { tracing } from '../telemetry/hooks.ts'
import { environment, role, scope } from '../validation.ts'
import type { CallerKeys } from './caller-keys.ts'
import { audience, checkDerived, isDerivedToken } from './derived.ts'
import { allowedFrom, type ClientAddress, clientIp, withControls } from './key-controls.ts'

/** Why verify refused a credential: declared once, beside the HTTP refusals that map each (@tokend/keys). */
export type { DenialReason }

/**
 * A verification's answer. Sessions and direct tokens hold no scopes; a direct token
 * has no role in its account either: it reaches its `resource` and nothing else.
 */
/** What a key's controls add to a valid answer: an access key's own, a derived token's parent's. */
interface KeyControlsAnswer {
  /** The key's `meta`, when it has one. */
  meta?: Readonly<Record<string, unknown>>
  /** The networks the key is bound to, when it is (the answer then holds only for this clientIp). */
  allowedCidrs?: readonly string[]
  /** Usage credits left after this verify, as this replica sees them, when the key has credits (a derived token spends its parent's). */
  remaining?: number
}

export type VerifyResult =
  | ({
      valid: true
      kind: 'access_key'
      tokenId: string
      accountId: string
      environment: Environment
      role: Role
      scopes: string[]
      name: string
      expiresAt: string | null
    } & KeyControlsAnswer)
  | {
      valid: true
      kind: 'session'
      /** The session id. */
      tokenId: string
      userId: string
      accountId: string
      environment: Environment
      role: Role
      scopes: string[]
      /** The username. */
      name: string
      expiresAt: string
    }
  | {
      valid: true
      kind: 'direct'
      /** The direct link's id. */
      tokenId: string
      accountId: string
      environment: Environment
      role: null
      scopes: string[]
      name: string
      expiresAt: string
      resource: { type: string; id: string }
    }
  | ({
      valid: true
      kind: 'derived'
      /** The parent access key's id: a derived token acts for its key. */
      tokenId: string
      accountId: string
      environment: Environment
      role: Role
      /** The token's scopes, a subset of its key's. */
      scopes: string[]
      /** The parent key's name. */
      name: string
      expiresAt: string
      /** The service the token was exchanged for. */
      audience: string
    } & KeyControlsAnswer)
  | { valid: false; reason: DenialReason; missingScopes?: string[]; retryAfterMs?: number; remaining?: number }

/** A key's record and its cache key, or why it is refused. */
type Checked = { record: KeyRecord; key: string } | { reason: DenialReason }

/** token.verify's input, on every transport (tRPC, REST, the fast path). */
export const verifyInput = z.strictObject({
  // Anything up to this length is judged (MALFORMED at worst); beyond it is not a key at all.
  token: z.string().max(4096),
  require: z
    .strictObject({
      scopes: z.array(scope).max(50).optional(),
      environment: environment.optional(),
      role: role.optional(),
      /** Derived tokens must be for this audience (WRONG_AUDIENCE); other credentials are bound to none. */
      audience: audience.optional(),
    })
    .optional(),
  /** A request limit to apply to the key's account, e.g. 60 per minute per endpoint. */
  ratelimit: z
    .strictObject({
      name: z.string().min(1).max(100),
      limit: z.number().int().min(1).max(1_000_000_000),
      windowMs: z.number().int().min(1_000).max(86_400_000),
    })
    .optional(),
  /** The address the credential was presented from; keys bound to networks need it. */
  clientIp: clientIp.optional(),
  /** Usage credits to spend (keys with credits only; default 1, 0 checks without spending). */
  cost: cost.optional(),
})

export type VerifyInput = z.infer<typeof verifyInput>

/** Whether `caller` may call verify: it holds `tokend:verify`. */
export function mayVerify(caller: Principal): boolean {
  return caller.scopes.includes('tokend:verify')
}

/**
 * token.verify, whatever the transport: each transport parses its wire format into
 * `VerifyInput` (all of a request's inputs before it calls this for any) and
 * authenticates the caller, then calls this once per input and formats the result.
 *
 * Every step from here down returns a MaybePromise: a cache hit is answered now, a step
 * that must wait (a load, a rate limit, a JWT) returns a promise.
 */
export function answerVerify(deps: Deps, caller: Principal, input: VerifyInput): MaybePromise<VerifyResult> {
  if (!mayVerify(caller)) throw new ForbiddenError('this needs the tokend:verify scope', ['tokend:verify'])
  return verifyCounted(deps, input)
}

/**
 * The verify every transport ends in, counted in the metrics. Transports whose caller
 * is the credential itself (the edge: a proxy forwarding a request) call it directly;
 * the others go through `answerVerify`.
 */
export function verifyCounted(deps: Deps, input: VerifyInput): MaybePromise<VerifyResult> {
  const started = performance.now()
  // With tracing on, a verify is a span (and a promise); off, a hit stays synchronous.
  const result = tracing ? tracing.verify(async () => verifyToken(deps, input)) : verifyToken(deps, input)
  if (isPromise(result)) return result.then((settled) => counted(deps, settled, started))
  return counted(deps, result, started)
}

function counted(deps: Deps, result: VerifyResult, started: number): VerifyResult {
  deps.metrics.verified(result, (performance.now() - started) / 1000)
  return result
}

/** The decision itself: the credential, then the caller's requirements, then its rate limit. */
export function verifyToken(deps: Deps, input: VerifyInput): MaybePromise<VerifyResult> {
  return andThen(checkKey(deps, input.token, input.clientIp), (checked) =>
    andThen(credentialOf(deps, input.token, checked, input.clientIp), (credential) => {
      if ('reason' in credential) return { valid: false, ...credential }
      const denied = unmet(input.require ?? {}, credential)
      if (denied) return denied
      // Meta and networks (SPEC §14) are the key's, not the principal's: added to the answer alone
      // (a derived token's are its parent key's).
      const controls =
        'record' in checked ? checked.record.controls : credential.kind === 'derived' ? credential.controls : null
      const answer = (principal: Credential) =>
        controls === null ? granted(principal) : withControls(granted(principal), controls)
      // Spent last, once everything else allows the call: the key's credits, or for a derived
      // token its parent's. Keys without credits skip it.
      const payer =
        'record' in checked
          ? checked.record.metered && checked.record.id
          : credential.kind === 'derived' && credential.metered && credential.parentId
      const charged = () =>
        payer ? chargeCredits(deps, payer, input.cost, () => answer(credential)) : answer(credential)
      if (!input.ratelimit) return charged()
      return andThen(deps.ratelimits.consume(credential.accountId, input.ratelimit), (decision) =>
        decision.allowed ? charged() : { valid: false, reason: 'RATE_LIMITED', retryAfterMs: decision.retryAfterMs },
      )
    }),
  )
}

/**
 * What a bearer credential stands for, or why it stands for nothing: the one place
 * that tells access keys from JWTs. Procedures' callers and verified tokens alike
 * come from here. With `callers` (procedures' callers), what was worked out for a
 * key is remembered by it (see CallerKeys); the decision is made afresh every time.
 */
export function resolveCredential(
  deps: Deps,
  token: string,
  from?: ClientAddress,
  callers?: CallerKeys,
): MaybePromise<Credential | Denied> {
  return andThen(checkKey(deps, token, from), (checked) => {
    if (!callers || !('record' in checked)) {
      callers?.forget(token)
      return credentialOf(deps, token, checked, from)
    }
    const { record } = checked
    deps.usage.touch(record.id)
    const remembered = callers.get(token)
    if (remembered?.record === record) return remembered.principal
    const principal = accessKeyPrincipal(record)
    callers.remember(token, { record, principal })
    return principal
  })
}

type Denied = { reason: DenialReason; missingScopes?: string[] }

/** The credential a checked key stands for, or a JWT's when the token is not a key at all. */
function credentialOf(
  deps: Deps,
  token: string,
  checked: Checked,
  from?: ClientAddress,
): MaybePromise<Credential | Denied> {
  if ('record' in checked) {
    deps.usage.touch(checked.record.id)
    return accessKeyPrincipal(checked.record)
  }
  if (checked.reason !== 'MALFORMED' || !looksLikeJwt(token)) return checked
  if (isDerivedToken(token)) return checkDerived(deps, token, from)
  return jwtCredential(deps, token)
}

async function jwtCredential(deps: Deps, token: string): Promise<Credential | Denied> {
  const jwt = await checkJwt(deps, token)
  if ('reason' in jwt) return jwt
  const { record } = jwt
  const expiresAt = new Date(jwt.expiresAt).toISOString()
  if (record.kind === 'direct') {
    return {
      kind: 'direct',
      directId: record.id,
      accountId: record.accountId,
      operator: record.operator,
      environment: record.environment,
      resource: { type: record.resourceType, id: record.resourceId },
      expiresAt,
    }
  }
  return {
    kind: 'session',
    sessionId: record.id,
    userId: record.userId,
    username: record.username,
    accountId: record.accountId,
    operator: record.operator,
    environment: record.environment,
    role: record.role,
    scopes: [],
    expiresAt,
  }
}

/**
 * The caller of a procedure: null without a valid credential; a direct token is refused,
 * and so (403 `ip_not_allowed`) is a key bound to networks the request is not from.
 */
export function principalOf(deps: Deps, token: string, from?: ClientAddress): MaybePromise<Principal | null> {
  return andThen(resolveCredential(deps, token, from, deps.callerKeys), (credential) => {
    if ('reason' in credential) {
      if (credential.reason === 'IP_NOT_ALLOWED') throw new IpNotAllowedError()
      return null
    }
    if (credential.kind === 'direct') {
      throw new ForbiddenError("a direct token reaches only its own resource, not tokend's procedures")
    }
    if (credential.kind === 'derived') {
      throw new ForbiddenError("a derived token reaches only its audience, not tokend's procedures")
    }
    return credential
  })
}

/**
 * Checks a presented key: offline format and checksum first, then the cache, then
 * Postgres. Throws UnavailableError only when the answer needs the database and
 * the database cannot give it — never a guess. A key found before is neither checked
 * nor hashed again (KeyDigests): only its record is looked up and judged afresh.
 */
export function checkKey(deps: Deps, token: string, from?: ClientAddress): MaybePromise<Checked> {
  const known = deps.keyDigests.get(token)
  if (known === undefined && parseKey(token, deps.config.TOKEND_TOKEN_PREFIX) === null) return { reason: 'MALFORMED' }
  const key = known ?? cacheKey(digestBytes(token))
  const found = deps.cache.lookup(key, loadKey(deps))
  if (isPromise(found)) return found.then((record) => judged(deps, token, key, known, record, from))
  return judged(deps, token, key, known, found, from)
}

/** judge, remembering the digest of a key found for the first time. */
function judged(
  deps: Deps,
  token: string,
  key: string,
  known: string | undefined,
  record: KeyRecord | null,
  from?: ClientAddress,
): Checked {
  if (known === undefined && record !== null) deps.keyDigests.remember(token, key)
  return judge(record, key, from)
}

/** The cache's loader: a digest, as the cache keys it, looked up in Postgres. */
const loadKey = (deps: Deps) => (key: string) => deps.keys.load(Buffer.from(key, 'latin1').toString('base64url'))

function judge(record: KeyRecord | null, key: string, from: ClientAddress): Checked {
  if (record === null) return { reason: 'NOT_FOUND' }
  if (record.revoked) return { reason: 'REVOKED' }
  if (record.expiresAt !== null && record.expiresAt <= Date.now()) return { reason: 'EXPIRED' }
  if (record.disabled) return { reason: 'DISABLED' }
  if (!record.accountActive) return { reason: 'ACCOUNT_SUSPENDED' }
  if (record.hasCidrs && !allowedFrom(record.controls, from)) return { reason: 'IP_NOT_ALLOWED' }
  return { record, key }
}

function accessKeyPrincipal(record: KeyRecord): AccessKeyPrincipal {
  return {
    kind: 'access_key',
    tokenId: record.id,
    accountId: record.accountId,
    operator: record.operator,
    environment: record.environment,
    role: record.role,
    scopes: record.scopes,
    name: record.name,
    expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
  }
}

/** A valid credential as verify reports it. */
function granted(credential: Credential): VerifyResult {
  const { accountId, environment } = credential
  switch (credential.kind) {
    case 'access_key': {
      const { tokenId, role, name, expiresAt } = credential
      const scopes = [...credential.scopes]
      return { valid: true, kind: 'access_key', tokenId, accountId, environment, role, scopes, name, expiresAt }
    }
    case 'session': {
      const { sessionId, userId, role, username, expiresAt } = credential
      const kind = 'session'
      return {
        valid: true,
        kind,
        tokenId: sessionId,
        userId,
        accountId,
        environment,
        role,
        scopes: [],
        name: username,
        expiresAt,
      }
    }
    case 'direct': {
      const { directId, resource, expiresAt } = credential
      const name = `${resource.type}:${resource.id}`
      const kind = 'direct'
      return {
        valid: true,
        kind,
        tokenId: directId,
        accountId,
        environment,
        role: null,
        scopes: [],
        name,
        expiresAt,
        resource,
      }
    }
    case 'derived': {
      const { parentId, role, name, expiresAt, audience } = credential
      const scopes = [...credential.scopes]
      const kind = 'derived'
      return { valid: true, kind, tokenId: parentId, accountId, environment, role, scopes, name, expiresAt, audience }
    }
  }
}

/** The first requirement a credential misses, as a denial; null when it meets them all. */
function unmet(require: NonNullable<VerifyInput['require']>, held: Credential): VerifyResult | null {
  if (require.audience !== undefined && held.kind === 'derived' && held.audience !== require.audience) {
    return { valid: false, reason: 'WRONG_AUDIENCE' }
  }
  if (require.environment && require.environment !== held.environment) {
    return { valid: false, reason: 'WRONG_ENVIRONMENT' }
  }
  const scopes = held.kind === 'access_key' || held.kind === 'derived' ? held.scopes : []
  const missingScopes = require.scopes?.filter((scope) => !scopes.includes(scope)) ?? []
  if (missingScopes.length > 0) return { valid: false, reason: 'INSUFFICIENT_SCOPE', missingScopes }
  // A manager key does not satisfy a requirement for an admin one; there is no separate role reason.
  if (require.role === 'admin' && (held.kind === 'direct' || held.role !== 'admin')) {
    return { valid: false, reason: 'INSUFFICIENT_SCOPE' }
  }
  return null
}
