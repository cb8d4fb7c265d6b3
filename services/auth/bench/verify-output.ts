/**
 * What validating token.verify's result with `.output()` would cost per call:
 * `node --import tsx services/auth/bench/verify-output.ts`. The answer is why verify
 * documents its output (meta.documentedOutput) instead of validating it.
 */
import { initTRPC } from '@trpc/server'
import { z } from 'zod'
import { verifyResult } from '../src/tokens/token.router.ts'
import type { VerifyResult } from '../src/tokens/verify.ts'

const granted: VerifyResult = {
  valid: true,
  kind: 'access_key',
  tokenId: 'tok_01JXYZABCDEFGHJKMNPQRSTVWX',
  accountId: 'acc_01JXYZABCDEFGHJKMNPQRSTVWX',
  environment: 'live',
  role: 'admin',
  scopes: ['recordings:read', 'recordings:write'],
  name: 'voice-api',
  expiresAt: null,
}
const denied: VerifyResult = { valid: false, reason: 'REVOKED' }

const t = initTRPC.create()
// One middleware, as authedProcedure has, so the output middleware is not the only one.
const procedure = t.procedure.use(({ next }) => next()).input(z.object({ token: z.string() }))
const router = t.router({
  bare: procedure.mutation(() => granted),
  validated: procedure.output(verifyResult).mutation(() => granted),
  // Isolates the cost of the extra middleware that .output() adds from the parse itself.
  passthrough: procedure.output((value: unknown) => value as VerifyResult).mutation(() => granted),
})
const caller = t.createCallerFactory(router)({})

const best = new Map<string, number>()
function record(label: string, ns: number): void {
  best.set(label, Math.min(best.get(label) ?? Number.POSITIVE_INFINITY, ns))
}
function sync(label: string, n: number, fn: () => unknown): void {
  const started = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn()
  record(label, Number(process.hrtime.bigint() - started) / n)
}
async function async(label: string, n: number, fn: () => Promise<unknown>): Promise<void> {
  const started = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await fn()
  record(label, Number(process.hrtime.bigint() - started) / n)
}

for (let round = 0; round < 10; round++) {
  sync('zod parse, valid access_key result', 500_000, () => verifyResult.parse(granted))
  sync('zod parse, denial', 500_000, () => verifyResult.parse(denied))
  await async('tRPC caller, no output parser', 50_000, () => caller.bare({ token: 'x' }))
  await async('tRPC caller, .output(verifyResult)', 50_000, () => caller.validated({ token: 'x' }))
  await async('tRPC caller, .output(no-op function)', 50_000, () => caller.passthrough({ token: 'x' }))
}
for (const [label, ns] of best) process.stdout.write(`${label.padEnd(40)} ${ns.toFixed(0).padStart(6)} ns/op\n`)
const overhead =
  (best.get('tRPC caller, .output(verifyResult)') ?? 0) - (best.get('tRPC caller, no output parser') ?? 0)
process.stdout.write(
  `${'.output() on the caller path'.padEnd(40)} ${overhead.toFixed(0).padStart(6)} ns/op (best of 10 rounds)\n`,
)
