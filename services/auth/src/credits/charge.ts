import type { Deps } from '../deps.ts'
import { andThen, type MaybePromise } from '../maybe-promise.ts'
import type { VerifyResult } from '../tokens/verify.ts'

/**
 * The credits step of the verify pipeline (tokens/verify.ts), for a key with credits
 * (`tokenId`; a derived token's parent pays for it): spends `cost` (default 1) from this
 * replica's lease and answers `granted()` with `remaining`, or USAGE_EXCEEDED when too
 * few credits are left. Synchronous while the lease covers the cost.
 */
export function chargeCredits(
  deps: Pick<Deps, 'credits'>,
  tokenId: string,
  cost: number | undefined,
  granted: () => VerifyResult,
): MaybePromise<VerifyResult> {
  return andThen(deps.credits.spend(tokenId, cost ?? 1), (spent): VerifyResult => {
    if (!spent.ok) return { valid: false, reason: 'USAGE_EXCEEDED', remaining: spent.remaining }
    const result = granted()
    if (result.valid && (result.kind === 'access_key' || result.kind === 'derived') && spent.remaining !== undefined) {
      result.remaining = spent.remaining
    }
    return result
  })
}
