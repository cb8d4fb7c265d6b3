import { BlockList, isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { z } from 'zod'

/**
 * Key controls (SPEC §14): free-form `meta` returned by verify, and `allowedCidrs`, the
 * networks a key may be presented from. Verify calls `allowedFrom` only for keys whose
 * record carries the "has networks" flag, so keys without a binding pay nothing.
 *
 * ipaddr.js reads and normalizes the networks people write (issue, update: cold paths).
 * The per-request work is Node's own: `net.isIP` validates `clientIp` (about 0.5 µs;
 * ipaddr.js takes some 60 µs to validate an IPv6 address), and `net.BlockList`s built
 * once per cached key match it. An IPv4 client (also in IPv4-mapped IPv6 form) matches
 * IPv4 networks only, an IPv6 client IPv6 networks only.
 */

export const MAX_META_BYTES = 4096
export const MAX_CIDRS = 32

/** What a cached key record keeps of its controls; null on the record when a key has neither. */
export interface KeyControls {
  /** Deep-frozen: every verify of the key shares it. */
  meta: Readonly<Record<string, unknown>> | null
  /** As stored (normalized), for the result; null without a binding. */
  allowedCidrs: readonly string[] | null
  /** IPv4 networks as [address, mask] pairs of unsigned 32-bit numbers (matched in plain arithmetic). */
  ipv4: readonly (readonly [number, number])[]
  /** IPv6 networks, matched by Node's BlockList. */
  ipv6: BlockList | null
}

/** IPv4-mapped IPv6 addresses (::ffff:10.1.2.3, as dual-stack sockets report IPv4 peers). */
const MAPPED = new BlockList()
MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6')

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
  return isIP(text) !== 0
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
  const ipv4: [number, number][] = []
  let ipv6: BlockList | null = null
  for (const cidr of cidrs ?? []) {
    // Stored normalized; a row that somehow is not (edited by hand) matches nothing rather than failing open.
    if (!ipaddr.isValidCIDR(cidr)) continue
    const [address, bits] = ipaddr.parseCIDR(cidr)
    const kind = address.kind()
    if (kind === 'ipv4') {
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
      ipv4.push([((ipv4Number(address.toString()) & mask) >>> 0) as number, mask])
    } else {
      ipv6 ??= new BlockList()
      ipv6.addSubnet(address.toString(), bits, kind)
    }
  }
  return {
    meta: rowMeta === null ? null : deepFreeze(rowMeta),
    allowedCidrs: cidrs === null ? null : Object.freeze([...cidrs]),
    ipv4,
    ipv6,
  }
}

/**
 * Whether a key bound to networks may be used from `from`: its address must fall in one
 * of them. No address, or one that does not parse, is outside every network.
 */
export function allowedFrom(controls: KeyControls | null, from: ClientAddress): boolean {
  const text = typeof from === 'string' ? from : from?.address
  if (!text || controls === null) return false
  const family = isIP(text)
  if (family === 0) return false
  try {
    if (family === 4) return inIpv4(controls.ipv4, ipv4Number(text))
    // An IPv4 client in IPv6 form is an IPv4 client: IPv4 networks only, never ::/0 and the like.
    const mapped = mappedIpv4(text)
    if (mapped !== null) return inIpv4(controls.ipv4, mapped)
    return controls.ipv6?.check(text, 'ipv6') ?? false
  } catch {
    return false
  }
}

/** A dotted-quad IPv4 address (already validated) as an unsigned 32-bit number. */
function ipv4Number(text: string): number {
  let value = 0
  for (const octet of text.split('.')) value = value * 256 + Number(octet)
  return value
}

/** The IPv4 address inside an IPv4-mapped IPv6 one (`::ffff:10.1.2.3`, or in hex), as a number; else null. */
function mappedIpv4(text: string): number | null {
  const colon = text.lastIndexOf(':')
  if (text.slice(0, colon + 1).toLowerCase() === '::ffff:' && isIP(text.slice(colon + 1)) === 4) {
    return ipv4Number(text.slice(colon + 1))
  }
  // Rarer spellings (::ffff:a00:1, 0:0:0:0:0:ffff:…): Node decides, ipaddr.js extracts.
  if (!/ffff/i.test(text) || !MAPPED.check(text, 'ipv6')) return null
  return ipv4Number(ipaddr.IPv6.parse(text).toIPv4Address().toString())
}

function inIpv4(networks: KeyControls['ipv4'], address: number): boolean {
  for (const [network, mask] of networks) if ((address & mask) >>> 0 === network) return true
  return false
}

/** Adds the key's `meta` and networks, those it has, to a fresh valid verify answer. */
export function withControls<T extends object>(
  result: T,
  controls: KeyControls,
): T & { meta?: NonNullable<KeyControls['meta']>; allowedCidrs?: readonly string[] } {
  const answer: T & { meta?: NonNullable<KeyControls['meta']>; allowedCidrs?: readonly string[] } = result
  if (controls.meta !== null) answer.meta = controls.meta
  if (controls.allowedCidrs !== null) answer.allowedCidrs = controls.allowedCidrs
  return answer
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item)
    Object.freeze(value)
  }
  return value
}
