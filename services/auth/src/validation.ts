import { ENVIRONMENTS } from '@tokend/keys'
import { z } from 'zod'

/**
 * Where `value` (parsed JSON) holds a string with a NUL character, as a dotted path
 * ('' for the value itself); null when it holds none. Postgres cannot store NUL in
 * text, so every input is checked for it once, before any procedure runs.
 */
export function nulPath(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null
  if (typeof value !== 'object' || value === null) return null
  for (const [key, item] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key
    if (key.includes('\u0000')) return at
    const found = nulPath(item, at)
    if (found !== null) return found
  }
  return null
}

/** Input building blocks shared by the routers. */
export const id = z.string().min(1).max(64)
export const environment = z.enum(ENVIRONMENTS)
export const role = z.enum(['admin', 'manager'])
export const scope = z
  .string()
  .max(100)
  .regex(/^[a-z0-9][a-z0-9_.-]*(:[a-z0-9_.*-]+)*$/, 'scopes look like "recordings:read"')
export const scopes = z.array(scope).max(50)
export const limit = z.number().int().min(1).max(100).default(50)
export const cursor = z.string().min(1).max(64)
/** A number of days for the forgotten-key filters (`expiringWithin`, `unusedFor`): 1 day to 100 years. */
export const days = z.number().int().min(1).max(36_500)

const MAX_EXPIRY_MS = 100 * 365 * 86_400_000
export const futureDate = z.iso
  .datetime({ offset: true })
  .refine((value) => Date.parse(value) > Date.now(), 'must be in the future')
  .refine((value) => Date.parse(value) < Date.now() + MAX_EXPIRY_MS, 'must be within 100 years')

export const username = z
  .string()
  .trim()
  .toLowerCase()
  .min(3)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._@+-]*$/, 'usernames are letters, digits and . _ @ + -, starting with a letter or digit')
export const email = z.email().max(254)
/** The password policy (NIST SP 800-63B): long enough, capped before it reaches argon2. */
export const newPassword = z
  .string()
  .min(12, 'passwords have at least 12 characters')
  .max(256, 'passwords have at most 256 characters')
  .refine((value) => value.trim().length > 0 && new Set(value).size > 2, 'the password is too simple')
/** Any password someone may already hold (the policy may have changed since); capped all the same. */
export const givenPassword = z.string().min(1).max(256)

/** Output building blocks: results are plain JSON, timestamps ISO-8601 strings. */
export const timestamp = z.string().meta({ format: 'date-time', examples: ['2026-11-23T08:00:00.000Z'] })

/** A page of a listing; `nextCursor` is the `cursor` of the next page, null on the last. */
export function page<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() })
}
