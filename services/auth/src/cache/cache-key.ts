/**
 * The verification cache's key for a key digest: its 32 raw bytes as a latin1
 * string, which takes 48 bytes of memory against 64 for the 43 characters of
 * base64url (SPEC §11 P9). Everything outside the cache speaks base64url.
 */
export function cacheKey(digest: string | Buffer): string {
  return (typeof digest === 'string' ? Buffer.from(digest, 'base64url') : digest).toString('latin1')
}
