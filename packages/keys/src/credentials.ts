import { parseKey } from './key-format.ts'

/** tokend refuses longer tokens outright; a longer credential is malformed here too. */
export const MAX_CREDENTIAL_LENGTH = 4096

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
// Loose on purpose: this only tells which kind of credential was meant, parseKey judges it.
const ACCESS_KEY_LIKE = /^[a-z]{2,8}_(live|test)_/

export type CredentialKind = 'access_key' | 'jwt' | 'malformed'

/** Whether a credential is a JWT, a well-formed access key, or neither (judged offline). */
export function credentialKind(credential: string, prefix: string): CredentialKind {
  if (credential.length === 0 || credential.length > MAX_CREDENTIAL_LENGTH) return 'malformed'
  if (JWT.test(credential)) return 'jwt'
  return parseKey(credential, prefix) === null ? 'malformed' : 'access_key'
}

export type Found = { credential: string } | { problem: 'missing' | 'multiple' | 'wrong_parameter' | 'bad_header' }

/**
 * Finds the one credential of a request: `Authorization: Bearer …`, `?token=` (JWTs
 * only) or `?accesskey=` (access keys only). A credential in the other parameter is
 * refused, never silently accepted, so the two names keep one meaning each.
 */
export function findCredential(authorization: string | undefined, url: string): Found {
  // URLSearchParams never throws, whatever the client sent; `new URL` could.
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '')
  const tokens = query.getAll('token')
  const accessKeys = query.getAll('accesskey')
  const given = (authorization === undefined ? 0 : 1) + tokens.length + accessKeys.length
  if (given === 0) return { problem: 'missing' }
  if (given > 1) return { problem: 'multiple' }
  if (authorization !== undefined) {
    const credential = /^Bearer +(\S+) *$/i.exec(authorization)?.[1]
    return credential === undefined ? { problem: 'bad_header' } : { credential }
  }
  const [token] = tokens
  if (token !== undefined) return ACCESS_KEY_LIKE.test(token) ? { problem: 'wrong_parameter' } : { credential: token }
  const accessKey = accessKeys[0] ?? ''
  return JWT.test(accessKey) ? { problem: 'wrong_parameter' } : { credential: accessKey }
}
