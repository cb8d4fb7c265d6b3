import { crc32 as zlibCrc32 } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checksum, crc32, digestKey, generateKey, parseKey } from './key-format.ts'

const env = fc.constantFrom('live' as const, 'test' as const)
const prefix = fc.stringMatching(/^[a-z]{2,8}$/)
const keyChars = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-. '

describe('key format', () => {
  it('generates keys of the documented shape', () => {
    const key = generateKey('tk', 'live')
    expect(key).toMatch(/^tk_live_[0-9A-Za-z]{49}$/)
    expect(parseKey(key, 'tk')).toEqual({ prefix: 'tk', environment: 'live', start: key.slice(0, 12) })
  })

  it('computes CRC32 as zlib does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), (text) => {
        const zlib = (zlibCrc32 as ((data: string) => number) | undefined)?.(text)
        if (zlib !== undefined) expect(crc32(text)).toBe(zlib)
      }),
    )
    expect(crc32('123456789')).toBe(0xcbf43926)
  })

  it('writes the checksum big-endian in base62, left-padded', () => {
    expect(checksum('')).toBe('000000') // crc32('') = 0
    // crc32('123456789') = 0xcbf43926 = 3421780262, which is 3jZRME in base62 (checked with Python's zlib)
    expect(checksum('123456789')).toBe('3jZRME')
  })

  it('parses every generated key', () => {
    fc.assert(
      fc.property(prefix, env, (p, e) => {
        const key = generateKey(p, e)
        expect(parseKey(key, p)).toMatchObject({ prefix: p, environment: e })
      }),
    )
  })

  it('rejects every single-character change', () => {
    fc.assert(
      fc.property(prefix, env, fc.nat(), fc.constantFrom(...keyChars), (p, e, position, replacement) => {
        const key = generateKey(p, e)
        const i = position % key.length
        fc.pre(key[i] !== replacement)
        const changed = key.slice(0, i) + replacement + key.slice(i + 1)
        expect(parseKey(changed, p)).toBeNull()
      }),
      { numRuns: 2000 },
    )
  })

  it('rejects insertions, deletions and truncations', () => {
    fc.assert(
      fc.property(prefix, env, fc.nat(), (p, e, position) => {
        const key = generateKey(p, e)
        const i = position % key.length
        expect(parseKey(key.slice(0, i) + key.slice(i + 1), p)).toBeNull()
        expect(parseKey(`${key.slice(0, i)}a${key.slice(i)}`, p)).toBeNull()
        expect(parseKey(key.slice(0, i), p)).toBeNull()
      }),
    )
  })

  it("rejects another deployment's prefix even with a valid checksum", () => {
    const key = generateKey('acme', 'test')
    expect(parseKey(key, 'acme')).not.toBeNull()
    expect(parseKey(key, 'tk')).toBeNull()
  })

  it('rejects arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(parseKey(s, 'tk')).toBeNull()
      }),
    )
  })

  it('digests without revealing the key', () => {
    const key = generateKey('tk', 'test')
    const digest = digestKey(key)
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(digest).toBe(digestKey(key))
    expect(digest).not.toContain(key.slice(8, 20))
  })
})
