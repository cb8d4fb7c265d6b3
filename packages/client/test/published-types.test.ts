import type { RouterInputs, RouterOutputs, VerifyResult } from '@tokend/auth'
import { expect, expectTypeOf, it } from 'vitest'
import type * as Published from '../src/published-auth-types.ts'

// Checked by `pnpm typecheck` (tsc): the published declarations say what tokend answers.
it('publishes the verify wire types exactly as tokend declares them', () => {
  expectTypeOf<Published.VerifyResult>().toEqualTypeOf<VerifyResult>()
  expectTypeOf<Published.RouterInputs['token']['verify']>().toEqualTypeOf<RouterInputs['token']['verify']>()
  expectTypeOf<Published.RouterInputs['token']['exchange']>().toEqualTypeOf<RouterInputs['token']['exchange']>()
  expectTypeOf<Published.RouterOutputs['token']['exchange']>().toEqualTypeOf<RouterOutputs['token']['exchange']>()
  expect(true).toBe(true)
})
