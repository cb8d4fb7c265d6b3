import type { Deps } from '../deps.ts'
import type { AccessKeyPrincipal } from '../principal.ts'
import type { VerifyResult } from '../tokens/verify.ts'

// Principals of keys with usage credits, as resolveCredential made them: the principal's
// own shape (what `me` answers) stays as it is, and keys without credits pay one lookup.
const metered = new WeakSet<AccessKeyPrincipal>()

export function markMetered(principal: AccessKeyPrincipal): void {
  metered.add(principal)
}

export function isMetered(principal: AccessKeyPrincipal): boolean {
  return metered.has(principal)
}

/**
 * The credits step of the verify pipeline (tokens/verify.ts), for keys with credits:
 * spends `cost` (default 1) from this replica's lease and answers the granted result
 * with `remaining`, or USAGE_EXCEEDED when too few credits are left.
 */
export async function chargeCredits(
  deps: Pick<Deps, 'credits'>,
  credential: AccessKeyPrincipal,
  cost: number | undefined,
  granted: (credential: AccessKeyPrincipal) => VerifyResult,
): Promise<VerifyResult> {
  const pending = deps.credits.spend(credential.tokenId, cost ?? 1)
  const spent = pending instanceof Promise ? await pending : pending
  if (!spent.ok) return { valid: false, reason: 'USAGE_EXCEEDED', remaining: spent.remaining }
  const result = granted(credential)
  if (result.valid && result.kind === 'access_key' && spent.remaining !== undefined) result.remaining = spent.remaining
  return result
}
