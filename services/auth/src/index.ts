export type { Principal } from './principal.ts'
export type { AppRouter, RouterInputs, RouterOutputs } from './router.ts'
export type { IssuedToken, TokenInfo } from './tokens/token.service.ts'
export type { VerifyResult } from './tokens/verify.ts'
