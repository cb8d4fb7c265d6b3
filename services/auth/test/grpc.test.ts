import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { generateKey } from '@tokend/keys'
import { freePort } from '@tokend/testing'
import fc from 'fast-check'
import { protoPath as healthProto } from 'grpc-health-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChangeEvent__Output } from '../src/grpc/generated/tokend/v1/ChangeEvent.ts'
import type { VerifyRequest } from '../src/grpc/generated/tokend/v1/VerifyRequest.ts'
import type { VerifyResponse__Output } from '../src/grpc/generated/tokend/v1/VerifyResponse.ts'
import { bearer, call, clientFor, failure, tokendClients } from './grpc-client.ts'
import { issue, newAccount, newSession, startTestApp, type TestApp } from './harness.ts'

/**
 * tokend.v1.Tokens over a real gRPC port, with clients built from the repository's
 * .proto files: the same answers as token.verify over tRPC, for every reason.
 */
const SEED = Number(process.env.FC_SEED ?? 20261214)

let t: TestApp
let clients: ReturnType<typeof tokendClients>
let address: string
const tokens: Record<string, string> = {}
let noVerifyKey: string

beforeAll(async () => {
  const port = await freePort()
  t = await startTestApp({ TOKEND_GRPC_PORT: String(port) })
  address = `127.0.0.1:${port}`
  clients = tokendClients(address)
  const { operator } = t
  tokens.live = (await issue(operator, { environment: 'live', role: 'manager', scopes: ['a:read', 'a:write'] })).token
  tokens.admin = (await issue(operator, { environment: 'test', role: 'admin' })).token
  const revoked = await issue(operator)
  await operator.mutation('token.revoke', { id: revoked.id })
  tokens.revoked = revoked.token
  const disabled = await issue(operator)
  await operator.mutation('token.setDisabled', { id: disabled.id, disabled: true })
  tokens.disabled = disabled.token
  const customer = await newAccount(operator, 'grpc customer')
  noVerifyKey = (await newAccount(operator, 'grpc neighbour')).adminKey.token
  tokens.suspended = (await issue(operator, { accountId: customer.accountId, environment: 'live' })).token
  const direct = await customer.admin.mutation('direct.create', { resourceType: 'ai', resourceId: 'rec-1' })
  const booted = await operator.as(undefined).mutation('auth.boot', { directHash: direct.body.result.data.hash })
  tokens.direct = booted.body.result.data.token
  tokens.session = (await newSession(operator)).token
  const expiring = await issue(operator, { expiresAt: new Date(Date.now() + 1_000).toISOString() })
  tokens.unknown = generateKey('tk', 'live')
  tokens.malformed = 'tk_live_not-a-key'
  tokens.empty = ''
  await new Promise((resolve) =>
    setTimeout(resolve, Math.max(0, Date.parse(String(expiring.expiresAt)) - Date.now() + 50)),
  )
  tokens.expired = expiring.token
  const suspend = await operator.mutation('account.setStatus', { accountId: customer.accountId, status: 'suspended' })
  expect(suspend.status).toBe(200)
}, 120_000)

afterAll(async () => {
  clients?.close()
  await t?.stop()
})

interface Input {
  token: string
  require?: { scopes?: string[]; environment?: 'live' | 'test'; role?: 'admin' | 'manager' }
  ratelimit?: { name: string; limit: number; windowMs: number }
}

/** The same input as a gRPC request: proto3 writes "no requirement" as empty. */
function toRequest(input: Input): VerifyRequest {
  return {
    token: input.token,
    scopes: input.require?.scopes ?? [],
    environment: input.require?.environment ?? '',
    role: input.require?.role ?? '',
    ratelimit: input.ratelimit ?? null,
  }
}

/** A VerifyResponse read back as token.verify's JSON result. */
function fromResponse(response: VerifyResponse__Output): unknown {
  if (!response.valid) {
    return {
      valid: false,
      reason: response.reason,
      ...(response.missingScopes.length > 0 && { missingScopes: response.missingScopes }),
      ...(response.retryAfterMs > 0 && { retryAfterMs: response.retryAfterMs }),
    }
  }
  const expires = response.expiresAt
  return {
    valid: true,
    kind: response.kind,
    tokenId: response.tokenId,
    accountId: response.accountId,
    environment: response.environment,
    role: response.role === '' ? null : response.role,
    scopes: response.scopes,
    name: response.name,
    expiresAt: expires ? new Date(expires.seconds * 1000 + expires.nanos / 1e6).toISOString() : null,
    ...(response.kind === 'session' && { userId: response.userId }),
    ...(response.kind === 'direct' && { resource: response.resource }),
  }
}

/** `key` null: no credential at all. */
const verify = (request: VerifyRequest, key: string | null = t.bootstrapKey) =>
  call<VerifyRequest, VerifyResponse__Output>(clients.tokens.Verify, clients.tokens, request, bearer(key ?? undefined))

const batchVerify = (requests: VerifyRequest[], key: string | null = t.bootstrapKey) =>
  call<{ requests: VerifyRequest[] }, { results: VerifyResponse__Output[] }>(
    clients.tokens.BatchVerify,
    clients.tokens,
    { requests },
    bearer(key ?? undefined),
  )

async function trpcVerify(input: Input): Promise<unknown> {
  const reply = await t.operator.mutation('token.verify', input)
  expect(reply.status).toBe(200)
  return reply.body.result.data
}

const inputs: fc.Arbitrary<Input> = fc
  .record(
    {
      token: fc.constantFrom(
        'live',
        'admin',
        'revoked',
        'disabled',
        'suspended',
        'direct',
        'session',
        'expired',
        'unknown',
        'malformed',
        'empty',
      ),
      require: fc.record(
        {
          scopes: fc.subarray(['a:read', 'a:write', 'b:x']),
          environment: fc.constantFrom('live' as const, 'test' as const),
          role: fc.constantFrom('admin' as const, 'manager' as const),
        },
        { requiredKeys: [] },
      ),
      ratelimit: fc.constant({ name: 'grpc-property', limit: 1_000_000, windowMs: 60_000 }),
    },
    { requiredKeys: ['token'] },
  )
  .map((input) => ({ ...input, token: tokens[input.token] as string }))

describe('Verify and BatchVerify', () => {
  it('answer what token.verify answers, for every reason and requirement', async () => {
    const seen = new Set<string>()
    await fc.assert(
      fc.asyncProperty(inputs, async (input) => {
        const expected = await trpcVerify(input)
        expect(fromResponse(await verify(toRequest(input)))).toEqual(expected)
        seen.add((expected as { reason?: string }).reason ?? 'valid')
      }),
      { seed: SEED, numRuns: 150 },
    )
    // The inputs reach every answer verify can give but the rate limit (below).
    expect([...seen].sort()).toEqual(
      [
        'ACCOUNT_SUSPENDED',
        'DISABLED',
        'EXPIRED',
        'INSUFFICIENT_SCOPE',
        'MALFORMED',
        'NOT_FOUND',
        'REVOKED',
        'WRONG_ENVIRONMENT',
        'valid',
      ].sort(),
    )
  }, 60_000)

  it('answers a batch in order, each as token.verify does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(inputs, { minLength: 0, maxLength: 8 }), async (batch) => {
        const expected = await Promise.all(batch.map(trpcVerify))
        const { results } = await batchVerify(batch.map(toRequest))
        expect(results.map(fromResponse)).toEqual(expected)
      }),
      { seed: SEED, numRuns: 25 },
    )
  }, 60_000)

  it('answers RATE_LIMITED with the wait, sharing the limit with every other transport', async () => {
    const ratelimit = { name: `grpc-${Date.now()}`, limit: 1, windowMs: 60_000 }
    expect(await trpcVerify({ token: tokens.live as string, ratelimit })).toMatchObject({ valid: true })
    const limited = await verify(toRequest({ token: tokens.live as string, ratelimit }))
    expect(limited).toMatchObject({ valid: false, reason: 'RATE_LIMITED' })
    expect(limited.retryAfterMs).toBeGreaterThan(0)
    expect(limited.retryAfterMs).toBeLessThanOrEqual(60_000)
    expect(await trpcVerify({ token: tokens.live as string, ratelimit })).toMatchObject({ reason: 'RATE_LIMITED' })
  })

  it('refuses a caller without a valid key (UNAUTHENTICATED) or without tokend:verify (PERMISSION_DENIED)', async () => {
    const request = toRequest({ token: tokens.live as string })
    for (const key of [undefined, tokens.revoked, tokens.malformed, 'Basic abc', tokens.session]) {
      const metadata = bearer(key)
      if (key === 'Basic abc') metadata.set('authorization', key)
      const refused = await failure(call(clients.tokens.Verify, clients.tokens, request, metadata))
      const expected = key === tokens.session ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED
      expect(refused.code, String(key)).toBe(expected)
    }
    expect(await failure(verify(request, noVerifyKey))).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      reason: 'forbidden',
    })
    expect(await failure(batchVerify([request], null))).toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      reason: 'invalid_token',
    })
  })

  it('refuses bad input with INVALID_ARGUMENT before doing anything', async () => {
    const bad: VerifyRequest[] = [
      { token: 'a\u0000b' },
      { token: 'x'.repeat(5000) },
      { token: 'k', scopes: ['Not A Scope'] },
      { token: 'k', environment: 'staging' },
      { token: 'k', role: 'owner' },
      { token: 'k', ratelimit: { name: '', limit: 1, windowMs: 60_000 } },
      { token: 'k', ratelimit: { name: 'n', limit: 0, windowMs: 60_000 } },
      { token: 'k', ratelimit: { name: 'n', limit: 1, windowMs: 1 } },
    ]
    for (const request of bad) {
      // Even without a credential: the input is judged first.
      for (const key of [t.bootstrapKey, null]) {
        expect(await failure(verify(request, key)), JSON.stringify(request)).toMatchObject({
          code: grpc.status.INVALID_ARGUMENT,
          reason: 'invalid_input',
        })
      }
      expect(await failure(batchVerify([{ token: 'k' }, request]))).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
      })
    }
    const tooMany = Array.from({ length: 101 }, () => ({ token: 'k' }))
    expect(await failure(batchVerify(tooMany))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT })
    expect((await batchVerify(tooMany.slice(1))).results).toHaveLength(100)
  })
})

describe('WatchChanges', () => {
  function watch(key: string | undefined) {
    const stream = clients.tokens.WatchChanges({}, bearer(key))
    const events: ChangeEvent__Output[] = []
    const ended = new Promise<grpc.status>((resolve) => {
      stream.on('error', (error: grpc.ServiceError) => resolve(error.code))
      stream.on('end', () => resolve(grpc.status.OK))
    })
    stream.on('data', (event: ChangeEvent__Output) => events.push(event))
    const next = async (match: (event: ChangeEvent__Output) => boolean) => {
      for (let waited = 0; waited < 5_000; waited += 10) {
        const found = events.find(match)
        if (found) return found
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      throw new Error(`no matching event in ${JSON.stringify(events)}`)
    }
    return { stream, events, ended, next }
  }

  it('opens with ready, then delivers a revocation', async () => {
    const watching = watch(t.bootstrapKey)
    expect(await watching.next((event) => event.event === 'ready')).toMatchObject({ ready: { scope: 'all' } })
    const key = await issue(t.operator)
    await t.operator.mutation('token.revoke', { id: key.id })
    const revoked = await watching.next((event) => event.key?.tokenId === key.id)
    expect(revoked.key).toMatchObject({ accountId: key.accountId, tokenId: key.id })
    expect(revoked.key?.digest).toMatch(/^[\w-]{43}$/)
    watching.stream.cancel()
  })

  it("ends with UNAUTHENTICATED when the caller's own key is revoked", async () => {
    const { accountId } = await newAccount(t.operator, 'watcher')
    const watcher = await issue(t.operator, { accountId, environment: 'live', scopes: ['tokend:verify'] })
    const watching = watch(watcher.token)
    expect(await watching.next((event) => event.event === 'ready')).toMatchObject({ ready: { scope: accountId } })
    await t.operator.mutation('token.revoke', { id: watcher.id })
    expect(await watching.ended).toBe(grpc.status.UNAUTHENTICATED)
  })

  it('refuses callers before streaming anything', async () => {
    for (const [key, code] of [
      [undefined, grpc.status.UNAUTHENTICATED],
      [tokens.revoked, grpc.status.UNAUTHENTICATED],
      [noVerifyKey, grpc.status.PERMISSION_DENIED],
    ] as const) {
      const watching = watch(key)
      expect(await watching.ended).toBe(code)
      expect(watching.events).toEqual([])
    }
  })
})

describe('the standard services', () => {
  it('answers health checks for the server and for tokend.v1.Tokens', async () => {
    type Health = grpc.Client & { Check: (...args: any[]) => unknown }
    const health = clientFor<Health>(
      healthProto,
      dirname(dirname(dirname(healthProto))),
      'grpc.health.v1.Health',
      address,
    )
    try {
      for (const service of ['', 'tokend.v1.Tokens']) {
        const answer = await call<{ service: string }, { status: string }>(health.Check, health, { service })
        expect(answer.status).toBe('SERVING')
      }
      expect(await failure(call(health.Check, health, { service: 'no.such.Service' }))).toMatchObject({
        code: grpc.status.NOT_FOUND,
      })
    } finally {
      health.close()
    }
  })

  it('describes its services through server reflection', async () => {
    const reflectionDir = join(
      dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
      'build/proto',
    )
    type Reflection = grpc.Client & { ServerReflectionInfo: () => grpc.ClientDuplexStream<any, any> }
    const reflection = clientFor<Reflection>(
      'grpc/reflection/v1/reflection.proto',
      reflectionDir,
      'grpc.reflection.v1.ServerReflection',
      address,
    )
    try {
      const ask = (request: object) =>
        new Promise<any>((resolve, reject) => {
          const stream = reflection.ServerReflectionInfo()
          stream.on('data', (answer) => {
            resolve(answer)
            stream.end()
          })
          stream.on('error', reject)
          stream.write(request)
        })
      const listed = await ask({ listServices: '*' })
      const names = listed.listServicesResponse.service.map((service: { name: string }) => service.name)
      expect(names).toEqual(expect.arrayContaining(['tokend.v1.Tokens']))
      const described = await ask({ fileContainingSymbol: 'tokend.v1.Tokens' })
      const files: Buffer[] = described.fileDescriptorResponse.fileDescriptorProto
      expect(Buffer.concat(files).toString('latin1')).toContain('tokend.v1.VerifyRequest')
    } finally {
      reflection.close()
    }
  })
})

describe('two replicas on one database', () => {
  it('denies a key through gRPC as soon as another replica has revoked it', async () => {
    const port = await freePort()
    const other = await startTestApp({ TOKEND_GRPC_PORT: String(port) }, { url: t.databaseUrl })
    const remote = tokendClients(`127.0.0.1:${port}`)
    try {
      const key = await issue(t.operator, { environment: 'live' })
      const verifyThere = () =>
        call<VerifyRequest, VerifyResponse__Output>(
          remote.tokens.Verify,
          remote.tokens,
          { token: key.token },
          bearer(t.bootstrapKey),
        )
      expect((await verifyThere()).valid).toBe(true) // cached on the other replica
      const revoke = await t.operator.mutation('token.revoke', { id: key.id })
      expect(revoke.status).toBe(200)
      const started = performance.now()
      let answer = await verifyThere()
      while (answer.valid && performance.now() - started < 5_000) answer = await verifyThere()
      expect(answer).toMatchObject({ valid: false, reason: 'REVOKED' })
      process.stdout.write(`gRPC revocation lag on another replica: ${(performance.now() - started).toFixed(1)} ms\n`)
      // Once denied, never valid again.
      for (let i = 0; i < 20; i++) expect((await verifyThere()).valid).toBe(false)
    } finally {
      remote.close()
      await other.stop()
    }
  })
})
