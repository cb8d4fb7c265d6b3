import { generateKey } from '@tokend/keys'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appRouter } from '../src/router.ts'
import { issue, newAccount, startTestApp, type TestApp } from './harness.ts'

/**
 * token.verify has a fast path for single JSON calls; everything else goes through
 * the stock tRPC adapter. A body sent chunked (no content-length) always takes the
 * stock path, so sending each call both ways shows the two answer byte for byte alike.
 */
let t: TestApp
let tokens: Record<string, string>

beforeAll(async () => {
  t = await startTestApp()
  const live = await issue(t.operator, { environment: 'live', scopes: ['recordings:read'] })
  const revoked = await issue(t.operator)
  await t.operator.mutation('token.revoke', { id: revoked.id })
  const customer = await newAccount(t.operator, 'no verify scope')
  tokens = {
    live: live.token,
    revoked: revoked.token,
    unknown: generateKey('tk', 'test'),
    malformed: `${live.token.slice(0, -1)}!`,
    noScope: customer.adminKey.token,
  }
})

afterAll(() => t?.stop())

interface Answer {
  status: number
  contentType: string | null
  vary: string | null
  wwwAuthenticate: string | null
  body: string
}

async function send(
  body: string,
  authorization: string | undefined,
  path: 'fast' | 'stock',
  url = '/trpc/token.verify',
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (authorization !== undefined) headers.authorization = authorization
  const payload = new TextEncoder().encode(body)
  const response = await fetch(`${t.url}${url}`, {
    method: 'POST',
    headers,
    ...(path === 'fast'
      ? { body: payload }
      : {
          // A stream has no content-length: it goes out chunked and takes the stock path.
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(payload)
              controller.close()
            },
          }),
          duplex: 'half',
        }),
  } as RequestInit)
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    vary: response.headers.get('vary'),
    wwwAuthenticate: response.headers.get('www-authenticate'),
    body: await response.text(),
  }
}

async function bothWays(
  body: string,
  authorization: string | null = `Bearer ${t.bootstrapKey}`,
  url = '/trpc/token.verify',
) {
  const [fast, stock] = [
    await send(body, authorization ?? undefined, 'fast', url),
    await send(body, authorization ?? undefined, 'stock', url),
  ]
  expect(fast).toEqual(stock)
  return fast
}

describe('the verify fast path answers exactly as tRPC does', () => {
  it('mirrors every middleware of the procedure', () => {
    // The fast path does what token.verify's middleware chain does, without the chain:
    // error mapping (toTRPCError), the NUL check (nulPath), authentication (createContext),
    // then input and resolver (verifyInput, answerVerify). A middleware added to that
    // chain must be mirrored in http/fast-verify.ts first.
    const verify = (appRouter._def.procedures as Record<string, any>)['token.verify']
    expect(verify._def.middlewares).toHaveLength(5)
    expect(verify._def.middlewares.slice(3).map((middleware: any) => middleware.name)).toEqual([
      'inputValidatorMiddleware',
      'resolveMiddleware',
    ])
  })

  it.each([
    ['a valid key', () => ({ token: tokens.live })],
    [
      'with requirements met',
      () => ({ token: tokens.live, require: { scopes: ['recordings:read'], environment: 'live' } }),
    ],
    ['a missing scope', () => ({ token: tokens.live, require: { scopes: ['recordings:write'] } })],
    ['the wrong environment', () => ({ token: tokens.live, require: { environment: 'test' } })],
    ['a revoked key', () => ({ token: tokens.revoked })],
    ['an unknown key', () => ({ token: tokens.unknown })],
    ['a malformed key', () => ({ token: tokens.malformed })],
    ['a rate limit', () => ({ token: tokens.live, ratelimit: { name: 'n', limit: 100, windowMs: 60_000 } })],
  ])('%s', async (_name, input) => {
    const answer = await bothWays(JSON.stringify(input()))
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body).result.data).toHaveProperty('valid')
  })

  it.each([
    ['bad input', '{"token":42}', 400],
    ['an unknown field', '{"token":"x","extra":1}', 400],
    ['bad JSON', '{"token":', 400],
    ['an empty object', '{}', 400],
  ])('%s', async (_name, body, status) => {
    expect((await bothWays(body)).status).toBe(status)
  })

  it('no credential, a bad one, and a caller without tokend:verify', async () => {
    const body = JSON.stringify({ token: tokens.live })
    expect((await bothWays(body, null)).status).toBe(401)
    expect((await bothWays(body, `Bearer ${tokens.revoked}`)).status).toBe(401)
    expect((await bothWays(body, 'Basic x')).status).toBe(401)
    expect((await bothWays(body, `Bearer ${tokens.noScope}`)).status).toBe(403)
  })

  it('takes the fast path for a single JSON call (it frames with content-length, tRPC streams)', async () => {
    const call = (body: string) =>
      fetch(`${t.url}/trpc/token.verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.bootstrapKey}` },
        body,
      })
    const fast = await call(JSON.stringify({ token: tokens.live }))
    expect(fast.headers.get('content-length')).not.toBeNull()
    expect(fast.headers.get('x-request-id')).toMatch(/^[\w-]+$/)
    const stock = await call(JSON.stringify({ token: 42 }))
    expect(stock.headers.get('transfer-encoding')).toBe('chunked')
  })

  it('for any JSON body', async () => {
    const token = fc.constantFrom(...Object.values(tokens), '', 'x')
    const input = fc.oneof(
      fc.record({ token }),
      fc.record({
        token,
        require: fc.record(
          { scopes: fc.array(fc.constantFrom('recordings:read', 'a:b', 'Bad')) },
          { requiredKeys: [] },
        ),
      }),
      fc.jsonValue(),
    )
    await fc.assert(
      fc.asyncProperty(input, async (value) => {
        await bothWays(JSON.stringify(value))
      }),
      { numRuns: 150 },
    )
  })

  it('batches of verify calls, all good or not', async () => {
    const batch = (n: number) => `/trpc/${Array(n).fill('token.verify').join(',')}?batch=1`
    const inputs = (...items: unknown[]) => JSON.stringify(Object.fromEntries(items.map((item, i) => [i, item])))
    const good = await bothWays(
      inputs({ token: tokens.live }, { token: tokens.revoked }, { token: tokens.malformed }),
      undefined,
      batch(3),
    )
    expect(good.status).toBe(200)
    expect(JSON.parse(good.body).map((item: any) => item.result.data.valid)).toEqual([true, false, false])
    const mixed = await bothWays(inputs({ token: tokens.live }, { token: 42 }), undefined, batch(2))
    expect(mixed.status).toBe(207)
    expect((await bothWays(inputs({ token: tokens.live }), undefined, batch(2))).status).toBe(207) // a call without input
    const limited = await bothWays(
      inputs({ token: tokens.live, ratelimit: { name: 'batch', limit: 1000, windowMs: 60_000 } }),
      undefined,
      batch(1),
    )
    expect(limited.status).toBe(200)
    expect((await bothWays(inputs({ token: tokens.live }), null, batch(1))).status).toBe(401)
  })

  it('any batch of verify calls', async () => {
    const token = fc.constantFrom(...Object.values(tokens), 'x')
    const call = fc.oneof(
      fc.record({ token }),
      fc.record({ token, require: fc.record({ environment: fc.constantFrom('live', 'test') }) }),
      fc.jsonValue(),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 16 }), async (calls) => {
        const url = `/trpc/${Array(calls.length).fill('token.verify').join(',')}?batch=1`
        await bothWays(JSON.stringify(Object.fromEntries(calls.map((c, i) => [i, c]))), undefined, url)
      }),
      { numRuns: 60 },
    )
  })
})
