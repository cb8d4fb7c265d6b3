import { type VerifyInput, verifyInput } from './verify.ts'

/** The longest token verifyInput accepts (its `token: z.string().max(4096)`). */
const MAX_TOKEN = 4096

/**
 * verifyInput's parse, with a shortcut for the input nearly every call sends: an object
 * holding a string `token` and nothing else is accepted as it is, with no copy (what
 * zod would return for it is an equal object). Anything else goes through the schema,
 * so every refusal and its message stay zod's own. Null when the input is not valid.
 */
export function parseVerifyInput(raw: unknown): VerifyInput | null {
  if (isPlainToken(raw)) return raw
  const parsed = verifyInput.safeParse(raw)
  return parsed.success ? parsed.data : null
}

function isPlainToken(raw: unknown): raw is VerifyInput {
  if (typeof raw !== 'object' || raw === null || Object.getPrototypeOf(raw) !== Object.prototype) return false
  let keys = 0
  for (const key in raw) {
    if (key !== 'token') return false
    keys++
  }
  const token = (raw as { token?: unknown }).token
  return keys === 1 && Object.hasOwn(raw, 'token') && typeof token === 'string' && token.length <= MAX_TOKEN
}
