import { isIpAddress } from './key-controls.ts'
import { type VerifyInput, verifyInput } from './verify.ts'

/** What verifyInput accepts: `token: z.string().max(4096)`, and `clientIp` (key-controls.ts). */
const MAX_TOKEN = 4096
const MAX_CLIENT_IP = 64

/**
 * verifyInput's parse, with a shortcut for the input nearly every call sends: an object
 * holding a string `token`, and perhaps the `clientIp` it came from, and nothing else is
 * accepted as it is, with no copy (what zod would return for it is an equal object). Anything else goes through the schema,
 * so every refusal and its message stay zod's own. Null when the input is not valid.
 */
export function parseVerifyInput(raw: unknown): VerifyInput | null {
  if (isPlainToken(raw)) return raw
  const parsed = verifyInput.safeParse(raw)
  return parsed.success ? parsed.data : null
}

function isPlainToken(raw: unknown): raw is VerifyInput {
  if (typeof raw !== 'object' || raw === null || Object.getPrototypeOf(raw) !== Object.prototype) return false
  for (const key in raw) {
    if (key !== 'token' && key !== 'clientIp') return false
  }
  const { token, clientIp } = raw as { token?: unknown; clientIp?: unknown }
  if (!Object.hasOwn(raw, 'token') || typeof token !== 'string' || token.length > MAX_TOKEN) return false
  if (!Object.hasOwn(raw, 'clientIp')) return true
  return typeof clientIp === 'string' && clientIp.length <= MAX_CLIENT_IP && isIpAddress(clientIp)
}
