import type { Environment } from '@tokend/keys'
import { PlanRequiredError } from '../errors.ts'

export type Plan = 'trial' | 'paid'

const DAY_MS = 86_400_000

/** Trial accounts work in the sandbox: what they do without naming an environment is `test`. */
export function defaultEnvironment(plan: Plan): Environment {
  return plan === 'paid' ? 'live' : 'test'
}

/** SPEC §7: `live` needs the paid plan. */
export function requireEnvironmentAllowed(plan: Plan, environment: Environment): void {
  if (plan === 'trial' && environment === 'live') {
    throw new PlanRequiredError('live keys and links need the paid plan; this account is on trial (test only)')
  }
}

/**
 * The expiry a key gets on `plan`: on trial never later than `trialDays` from now
 * (and never "never"); on paid what was asked.
 */
export function planExpiry(plan: Plan, trialDays: number, requested: Date | null, now = Date.now()): Date | null {
  if (plan === 'paid') return requested
  const bound = new Date(now + trialDays * DAY_MS)
  return requested === null || requested > bound ? bound : requested
}
