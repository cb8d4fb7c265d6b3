export type { CacheOptions } from './cache.ts'
export {
  createTokendClient,
  type TokendClient,
  type TokendClientOptions,
  type TokendClientStats,
  type TokendLogger,
  type VerifyOptions,
} from './client.ts'
export { TokendRejectedError, TokendSetupError, TokendUnavailableError } from './errors.ts'
export { type AuthErrorCode, type RequireAuthOptions, requireAuth } from './middleware.ts'
export type {
  DenialReason,
  DerivedToken,
  ExchangeInput,
  RateLimit,
  Requirements,
  TokendPrincipal,
  VerifyResult,
} from './types.ts'
