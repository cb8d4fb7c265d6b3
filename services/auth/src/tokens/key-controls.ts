import ipaddr from 'ipaddr.js'
import { z } from 'zod'

/**
 * Key controls (SPEC §14): free-form `meta` returned by verify, and `allowedCidrs`, the
 * networks a key may be presented from. Verify calls `allowedFrom` only for keys whose
 * record carries the "has networks" flag, so keys without a binding pay nothing.
 */

export const MAX_META_BYTES = 4096
export const MAX_CIDRS = 32

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number]

/** What a cached key record keeps of its controls; null on the record when a key has neither. */
export interface KeyControls {
  /** Deep-frozen: every verify of the key shares it. */
  meta: Readonly<Record<string, unknown>> | null
  /** As stored (normalized), for the result; null without a binding. */
  allowedCidrs: readonly string[] | null
  ranges: readonly Range[]
}

/**
 * Where a credential is presented from: verify's `clientIp`, or a request whose
 * address (per TOKEND_TRUST_PROXY) is read only when a key has a binding.
 */
export type ClientAddress = string | { readonly address: string | null } | null | undefined

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Strings whose JSON Postgres `jsonb` refuses: lone surrogates (NUL is refused for every input already). */
function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return !LONE_SURROGATE.test(value)
  if (typeof value !== 'object' || value === null) return true
  return Object.entries(value).every(([key, item]) => !LONE_SURROGATE.test(key) && wellFormed(item))
}

/** `meta`: a JSON object of at most 4 KB serialized (UTF-8). */
export const meta = z
  .record(z.string(), z.unknown())
  .refine((value) => typeof value === 'object' && value !== null && !Array.isArray(value), 'meta is a JSON object')
  .refine(
    (value) => Buffer.byteLength(JSON.stringify(value)) <= MAX_META_BYTES,
    `meta holds at most ${MAX_META_BYTES} bytes of JSON`,
  )
  .refine(wellFormed, 'meta must not hold unpaired UTF-16 surrogates')
  .meta({ description: `A JSON object of at most ${MAX_META_BYTES} bytes, returned by verify` })

/** One network, normalized (`10.1.2.3/8` → `10.0.0.0/8`, a bare address → /32 or /128); null when not one. */
export function normalizeCidr(text: string): string | null {
  const [address = '', bits, ...rest] = text.trim().split('/')
  if (rest.length > 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits))) return null
  // Strict forms only: ipaddr.js would also read `10.1` or `0x0a.0.0.1` as IPv4.
  const v4 = ipaddr.IPv4.isValidFourPartDecimal(address)
  if (!v4 && !(address.includes(':') && !address.includes('%') && ipaddr.IPv6.isValid(address))) return null
  let parsed: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(address)
  let prefix = bits === undefined ? (v4 ? 32 : 128) : Number(bits)
  if (prefix > (v4 ? 32 : 128)) return null
  // An IPv4-mapped IPv6 network is an IPv4 one: clients' mapped addresses are matched as IPv4.
  if (parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress() && prefix >= 96) {
    parsed = parsed.toIPv4Address()
    prefix -= 96
  }
  const network =
    parsed.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${parsed.toString()}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${parsed.toString()}/${prefix}`)
  return `${network.toString()}/${prefix}`
}

/** `allowedCidrs`: up to 32 IPv4 or IPv6 networks, normalized and without repeats; empty removes the binding. */
export const allowedCidrs = z
  .array(z.string().max(64))
  .max(MAX_CIDRS)
  .transform((list, ctx) => {
    const normalized: string[] = []
    for (const [index, text] of list.entries()) {
      const cidr = normalizeCidr(text)
      if (cidr === null) {
        ctx.addIssue({ code: 'custom', message: 'not an IPv4 or IPv6 network such as 10.0.0.0/8', path: [index] })
      } else if (!normalized.includes(cidr)) normalized.push(cidr)
    }
    return normalized
  })
  .meta({ description: `At most ${MAX_CIDRS} IPv4 or IPv6 networks (CIDR) the key may be presented from` })

/** An IP address as verify's `clientIp` takes it (IPv6 with a zone, as express reports link-local peers, too). */
export function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (text.includes(':') && ipaddr.IPv6.isValid(text))
}

export const clientIp = z
  .string()
  .max(64)
  .refine(isIpAddress, 'clientIp is an IPv4 or IPv6 address')
  .meta({ description: "The caller's address; required to pass for keys bound to networks (allowedCidrs)" })

/** A key's controls as the cache keeps them, from its row; null when it has none. */
export function keyControls(
  rowMeta: Record<string, unknown> | null,
  rowCidrs: readonly string[] | null,
): KeyControls | null {
  const cidrs = rowCidrs !== null && rowCidrs.length > 0 ? rowCidrs : null
  if (rowMeta === null && cidrs === null) return null
  const ranges: Range[] = []
  for (const cidr of cidrs ?? []) {
    // Stored normalized; a row that somehow is not (edited by hand) matches nothing rather than failing open.
    if (ipaddr.isValidCIDR(cidr)) ranges.push(ipaddr.parseCIDR(cidr))
  }
  return {
    meta: rowMeta === null ? null : deepFreeze(rowMeta),
    allowedCidrs: cidrs === null ? null : Object.freeze([...cidrs]),
    ranges: Object.freeze(ranges),
  }
}

/**
 * Whether a key bound to networks may be used from `from`: its address must fall in one
 * of them. No address, or one that does not parse, is outside every network.
 */
export function allowedFrom(controls: KeyControls | null, from: ClientAddress): boolean {
  const text = typeof from === 'string' ? from : from?.address
  if (!text || controls === null) return false
  let address: ipaddr.IPv4 | ipaddr.IPv6
  try {
    // process() reads an IPv4-mapped IPv6 address (::ffff:10.1.2.3, as dual-stack sockets report IPv4) as IPv4.
    address = ipaddr.process(text)
  } catch {
    return false
  }
  const kind = address.kind()
  return controls.ranges.some(([network, bits]) => network.kind() === kind && address.match(network, bits))
}

/** A valid verify answer with the key's `meta` and networks, those it has. */
export function withControls<T extends object>(result: T, controls: KeyControls): T {
  return {
    ...result,
    ...(controls.meta !== null && { meta: controls.meta }),
    ...(controls.allowedCidrs !== null && { allowedCidrs: controls.allowedCidrs }),
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item)
    Object.freeze(value)
  }
  return value
}
