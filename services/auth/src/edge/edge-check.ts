import { denialRefusal, type Found, MAX_CREDENTIAL_LENGTH, problemRefusal, type Refusal } from '@tokend/keys'
import { TRPCError } from '@trpc/server'
import type { Deps } from '../deps.ts'
import { InvalidInputError } from '../errors.ts'
import { isIpAddress } from '../tokens/key-controls.ts'
import { type VerifyInput, type VerifyResult, verifyCounted, verifyInput } from '../tokens/verify.ts'
import { nulPath } from '../validation.ts'

/** The realm of every RFC 6750 challenge tokend writes. */
export const REALM = 'tokend'

/** What a proxy's route requires, as proxies write it: `scopes` comma-separated, `ratelimit` as `name:limit:windowMs`. */
export interface EdgeRequirements {
  scopes?: string | undefined
  environment?: string | undefined
  /** The audience derived tokens must be for (SPEC §14). */
  audience?: string | undefined
  ratelimit?: string | undefined
}

export type EdgeAnswer =
  | { allowed: true; result: Extract<VerifyResult, { valid: true }>; headers: Record<string, string> }
  | { allowed: false; refusal: Refusal; reason: string }

/** The principal headers an allowed request carries upstream; any of these the client sent are dropped. */
export const PRINCIPAL_HEADERS = [
  'x-tokend-account-id',
  'x-tokend-key-id',
  'x-tokend-environment',
  'x-tokend-scopes',
  'x-tokend-kind',
] as const

/**
 * The route's requirements as a `VerifyInput` (with the credential put in later).
 * Requirements come from the proxy's configuration, not from its client: a bad one is
 * an InvalidInputError, which no proxy turns into an allow.
 */
export function parseRequirements(requirements: EdgeRequirements): Omit<VerifyInput, 'token'> {
  const scopes = (requirements.scopes ?? '')
    .split(',')
    .map((scope) => scope.trim())
    .filter((scope) => scope !== '')
  const require = {
    ...(scopes.length > 0 && { scopes }),
    ...(requirements.environment && { environment: requirements.environment }),
    ...(requirements.audience && { audience: requirements.audience }),
  }
  let ratelimit: unknown
  if (requirements.ratelimit) {
    const match = /^(.+):(\d+):(\d+)$/.exec(requirements.ratelimit)
    if (!match) throw new InvalidInputError('ratelimit is name:limit:windowMs, e.g. api:60:60000', 'ratelimit')
    ratelimit = { name: match[1], limit: Number(match[2]), windowMs: Number(match[3]) }
  }
  const raw = {
    token: '',
    ...(Object.keys(require).length > 0 && { require }),
    ...(ratelimit !== undefined && { ratelimit }),
  }
  const nul = nulPath(raw)
  if (nul !== null) throw new InvalidInputError('text must not contain NUL characters (\\u0000)', nul)
  const parsed = verifyInput.safeParse(raw)
  if (!parsed.success) throw new TRPCError({ code: 'BAD_REQUEST', message: 'invalid input', cause: parsed.error })
  const { token: _token, ...rest } = parsed.data
  return rest
}

/**
 * The edge's decision on one request: the credential it carries (`findCredential`, the
 * rules of §10) verified against the route's requirements by the one verify pipeline,
 * and the answer every edge transport gives — principal headers, or a refusal with its
 * status, RFC 6750 challenge, Retry-After and JSON body. Throws when tokend cannot
 * decide (the database is down and the answer is not cached): the caller fails closed.
 * `client` is the original request's address as the transport derived it (per
 * TOKEND_TRUST_PROXY); one that is not an IP address counts as none.
 */
export async function edgeCheck(
  deps: Deps,
  found: Found,
  required: Omit<VerifyInput, 'token'>,
  client?: string,
): Promise<EdgeAnswer> {
  if ('problem' in found) {
    const refusal = problemRefusal(found.problem, REALM)
    return { allowed: false, refusal, reason: refusal.body.error.code }
  }
  const token = found.credential
  // Too long or holding NUL: no key, whatever it claims to be; verify's schema would call it bad input.
  const result: VerifyResult =
    token.length > MAX_CREDENTIAL_LENGTH || token.includes('\u0000')
      ? { valid: false, reason: 'MALFORMED' }
      : await verifyCounted(deps, {
          ...required,
          token,
          ...(client !== undefined && isIpAddress(client) && { clientIp: client }),
        })
  if (!result.valid) {
    const refusal = denialRefusal(result, REALM, required.require?.scopes)
    return { allowed: false, refusal, reason: refusal.body.error.code }
  }
  return { allowed: true, result, headers: principalHeaders(result) }
}

function principalHeaders(result: Extract<VerifyResult, { valid: true }>): Record<string, string> {
  return {
    'x-tokend-account-id': result.accountId,
    'x-tokend-key-id': result.tokenId,
    'x-tokend-environment': result.environment,
    'x-tokend-scopes': result.scopes.join(','),
    'x-tokend-kind': result.kind,
  }
}
