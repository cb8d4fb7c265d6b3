import { createHash, randomBytes } from 'node:crypto'

/** The alphabet of both the secret and the checksum (SPEC §3). */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const SECRET_LENGTH = 43
const CHECK_LENGTH = 6
const START_SECRET_CHARS = 4
const KEY_PATTERN = /^([a-z]{2,8})_(live|test)_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/
const PREFIX_PATTERN = /^[a-z]{2,8}$/

export const ENVIRONMENTS = ['live', 'test'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

export interface ParsedKey {
  prefix: string
  environment: Environment
  /** Non-secret identifier shown in listings: prefix, environment and 4 secret characters. */
  start: string
}

export function isValidPrefix(prefix: string): boolean {
  return PREFIX_PATTERN.test(prefix)
}

/** Generates `{prefix}_{env}_{secret}{check}` with a 43-character CSPRNG secret (≈256 bits). */
export function generateKey(prefix: string, environment: Environment): string {
  if (!isValidPrefix(prefix)) throw new Error(`invalid key prefix "${prefix}"`)
  const body = `${prefix}_${environment}_${randomBase62(SECRET_LENGTH)}`
  return body + checksum(body)
}

/**
 * Parses a key offline. Returns null for anything malformed: a wrong shape, another
 * deployment's prefix, or a failed checksum. No lookup is needed to reject those.
 */
export function parseKey(key: string, expectedPrefix: string): ParsedKey | null {
  const match = KEY_PATTERN.exec(key)
  if (!match) return null
  const [, prefix, environment, secret, check] = match as unknown as [string, string, Environment, string, string]
  if (prefix !== expectedPrefix) return null
  if (checksum(key.slice(0, key.length - CHECK_LENGTH)) !== check) return null
  return { prefix, environment, start: `${prefix}_${environment}_${secret.slice(0, START_SECRET_CHARS)}` }
}

/** SHA-256 of the whole key, base64url: what tokend stores and announces instead of the key. */
export function digestKey(key: string): string {
  return digestBytes(key).toString('base64url')
}

/** SHA-256 of the whole key as raw bytes. */
export function digestBytes(key: string): Buffer {
  return createHash('sha256').update(key).digest()
}

/** CRC32 of `text`, written big-endian in base62 and left-padded to 6 characters. */
export function checksum(text: string): string {
  let value = crc32(text)
  let out = ''
  for (let i = 0; i < CHECK_LENGTH; i++) {
    out = ALPHABET[value % 62] + out
    value = Math.floor(value / 62)
  }
  return out
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

/**
 * CRC32 (IEEE, as zlib computes it) of ASCII text. Written out rather than taken from
 * `zlib.crc32` so the format also works on Node releases and runtimes without it.
 */
export function crc32(text: string): number {
  let crc = 0xffffffff
  for (let i = 0; i < text.length; i++) {
    crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] as number) ^ (crc >>> 8)
  }
  return (crc ^ 0xffffffff) >>> 0
}

function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: rejecting the top values keeps every character equally likely.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62]
    }
  }
  return out
}
