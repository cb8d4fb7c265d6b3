import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { credentialKind, findCredential } from './credentials.ts'
import { generateKey } from './key-format.ts'

const key = generateKey('tk', 'live')
const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'

describe('findCredential', () => {
  it('never throws, whatever the header and URL', () => {
    fc.assert(
      fc.property(fc.option(fc.string(), { nil: undefined }), fc.string(), (authorization, url) => {
        findCredential(authorization, url)
        findCredential(authorization, `//${url}?${url}`)
      }),
    )
  })

  it('keeps ?accesskey= for access keys and ?token= for JWTs', () => {
    expect(findCredential(undefined, `/x?accesskey=${key}`)).toEqual({ credential: key })
    expect(findCredential(undefined, `/x?token=${jwt}`)).toEqual({ credential: jwt })
    expect(findCredential(undefined, `/x?token=${key}`)).toEqual({ problem: 'wrong_parameter' })
    expect(findCredential(undefined, `/x?accesskey=${jwt}`)).toEqual({ problem: 'wrong_parameter' })
    expect(findCredential(`Bearer ${key}`, '/x')).toEqual({ credential: key })
    expect(findCredential(`bearer  ${jwt} `, '/x')).toEqual({ credential: jwt })
    expect(findCredential('Basic abc', '/x')).toEqual({ problem: 'bad_header' })
    expect(findCredential(undefined, '/x')).toEqual({ problem: 'missing' })
    expect(findCredential(`Bearer ${key}`, `/x?token=${jwt}`)).toEqual({ problem: 'multiple' })
  })
})

describe('credentialKind', () => {
  it('judges keys offline and leaves JWTs to tokend', () => {
    expect(credentialKind(key, 'tk')).toBe('access_key')
    expect(credentialKind(key, 'acme')).toBe('malformed')
    expect(credentialKind(jwt, 'tk')).toBe('jwt')
    expect(credentialKind(`${jwt}.x`, 'tk')).toBe('malformed')
    expect(credentialKind(`${'a'.repeat(4000)}.${'b'.repeat(100)}.c`, 'tk')).toBe('malformed')
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(credentialKind(s, 'tk')).not.toBe('access_key')
      }),
    )
  })
})
