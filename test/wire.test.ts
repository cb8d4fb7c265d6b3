import { generateKey } from '@tokend/keys'
import { Caller, type RunningTokend, startTokend } from '@tokend/testing'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appRouter } from '../services/auth/src/router.ts'

/**
 * Whatever a client sends, on any path, a real tokend process answers it without a
 * 500 and keeps answering; verify's fast path and tRPC answer alike, byte for byte;
 * every verify is counted once. Runs are bounded and seeded: a failure prints its seed
 * and path, and `FC_SEED=<seed>` replays it.
 */
const SEED = Number(process.env.FC_SEED ?? 20261202)

type AnyProcedure = { _def: { type: string; inputs: unknown[] } }

let tokend: RunningTokend
let withVerify: string
let withoutVerify: string
let known: string[]

beforeAll(async () => {
  tokend = await startTokend()
  withVerify = tokend.bootstrapKey
  const operator = new Caller(tokend.url, withVerify)
  const account = await operator.mutation('account.create', { name: 'wire', plan: 'paid' })
  const accountId = account.body.result.data.id
  const admin = await operator.mutation('token.issue', {
    name: 'tenant admin',
    environment: 'live',
    role: 'admin',
    accountId,
  })
  withoutVerify = admin.body.result.data.token
  const live = await operator.mutation('token.issue', { name: 'k', environment: 'live', scopes: ['a:b'] })
  const revoked = await operator.mutation('token.issue', { name: 'r', environment: 'test' })
  await operator.mutation('token.revoke', { id: revoked.body.result.data.id })
  known = [live.body.result.data.token, revoked.body.result.data.token, generateKey('tk', 'test')]
}, 120_000)

afterAll(async () => {
  await tokend?.stop()
})

const procedures = Object.entries(appRouter._def.procedures as unknown as Record<string, AnyProcedure>)
  .filter(([, procedure]) => procedure._def.type !== 'subscription')
  .map(([path, procedure]) => ({
    path,
    type: procedure._def.type as 'query' | 'mutation',
    fields: fieldsOf(procedure),
  }))

function fieldsOf(procedure: AnyProcedure): string[] {
  type Def = {
    type: string
    shape?: Record<string, unknown>
    innerType?: { _zod: { def: Def } }
    in?: { _zod: { def: Def } }
  }
  let def = (procedure._def.inputs[0] as { _zod: { def: Def } } | undefined)?._zod.def
  while (def && def.type !== 'object') def = (def.innerType ?? def.in)?._zod.def
  return Object.keys(def?.shape ?? {})
}

/** Strings a careless or hostile client sends: control characters, NUL, lone surrogates, keys. */
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\u0001\u001f\u007f', '\ud800', '\udfff x', '', ' ', 'tk_live_'),
  fc.constantFrom(...Array.from({ length: 3 }, (_, i) => i)).map((i) => known[i] as string),
)
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    text,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(text, tie('value'), { maxKeys: 3 }),
  ),
}))
/** An input for `fields`: any JSON at all, or an object with some of the procedure's own fields. */
const inputFor = (fields: string[]) =>
  fields.length === 0
    ? value
    : fc.oneof(value, fc.dictionary(fc.constantFrom(...fields), value, { maxKeys: fields.length }))
const call = fc
  .constantFrom(...procedures)
  .chain((procedure) => inputFor(procedure.fields).map((input) => ({ procedure, input })))
const caller = fc.constantFrom<'verify' | 'noVerify' | 'none'>('verify', 'noVerify', 'none')

function authorization(who: 'verify' | 'noVerify' | 'none'): Record<string, string> {
  if (who === 'none') return {}
  return { authorization: `Bearer ${who === 'verify' ? withVerify : withoutVerify}` }
}

async function send(path: string, init: RequestInit & { headers?: Record<string, string> }) {
  const response = await fetch(`${tokend.url}${path}`, init)
  const body = await response.text()
  if (response.status >= 500 && response.status !== 503) {
    throw new Error(`${init.method} ${path} answered ${response.status}: ${body}`)
  }
  // 503 only ever means "the database is unavailable"; it is up here, so none is expected at all.
  expect(response.status, `${init.method} ${path}: ${body}`).toBeLessThan(500)
  return { status: response.status, headers: response.headers, body }
}

async function stillAnswers() {
  const health = await fetch(`${tokend.url}/healthz`)
  expect(health.status).toBe(200)
  expect(tokend.process.child.exitCode).toBeNull()
}

async function verifiesCounted(): Promise<number> {
  const text = await (await fetch(`${tokend.url}/metrics`)).text()
  return text
    .split('\n')
    .filter((line) => line.startsWith('tokend_verifies_total{'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0)
}

const RUNS = { seed: SEED, numRuns: 120, endOnFailure: true }

describe('any request, on any path', () => {
  it('one tRPC call to any procedure, by any caller', async () => {
    await fc.assert(
      fc.asyncProperty(call, caller, async ({ procedure, input }, who) => {
        const json = JSON.stringify(input) ?? 'null'
        if (procedure.type === 'query') {
          await send(`/trpc/${procedure.path}?input=${encodeURIComponent(json)}`, {
            method: 'GET',
            headers: authorization(who),
          })
        } else {
          await send(`/trpc/${procedure.path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...authorization(who) },
            body: json,
          })
        }
      }),
      RUNS,
    )
    await stillAnswers()
  })

  it('batches of 1 to 100 calls, mixed procedures, missing and extra indexes', async () => {
    const batch = fc.record({
      calls: fc.array(call, { minLength: 1, maxLength: 100 }),
      dropped: fc.array(fc.nat(99), { maxLength: 5 }),
      extra: fc.array(fc.integer({ min: -2, max: 150 }), { maxLength: 3 }),
      method: fc.constantFrom('GET', 'POST'),
    })
    await fc.assert(
      fc.asyncProperty(batch, caller, async ({ calls, dropped, extra, method }, who) => {
        const inputs: Record<string, unknown> = {}
        calls.forEach((each, index) => {
          if (!dropped.includes(index)) inputs[index] = each.input
        })
        for (const index of extra) inputs[index] = { token: known[0] }
        const paths = calls.map((each) => each.procedure.path).join(',')
        if (method === 'GET') {
          await send(`/trpc/${paths}?batch=1&input=${encodeURIComponent(JSON.stringify(inputs))}`, {
            method,
            headers: authorization(who),
          })
        } else {
          await send(`/trpc/${paths}?batch=1`, {
            method,
            headers: { 'content-type': 'application/json', ...authorization(who) },
            body: JSON.stringify(inputs),
          })
        }
      }),
      { ...RUNS, numRuns: 60 },
    )
    await stillAnswers()
  })

  it('REST: any route, any body or query string, by any caller', async () => {
    const doc = (await (await fetch(`${tokend.url}/openapi.json`)).json()) as { paths: Record<string, object> }
    const routes = Object.entries(doc.paths).flatMap(([template, item]) =>
      Object.keys(item).map((method) => ({ template, method: method.toUpperCase() })),
    )
    const request = fc.record({
      route: fc.constantFrom(...routes),
      // Percent-encoded text, or escapes that are not UTF-8 at all.
      param: fc.oneof(
        // Buffer.from makes lone surrogates U+FFFD, which encodeURIComponent can write.
        text.map((raw) => encodeURIComponent(Buffer.from(raw).toString())),
        fc.constantFrom('%FF', '%00', '%E0%A4%A', '%', '..%2F'),
      ),
      body: value,
      query: fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 }),
    })
    await fc.assert(
      fc.asyncProperty(request, caller, async ({ route, param, body, query }, who) => {
        const path = route.template.replace(/\{\w+\}/g, param)
        const search = new URLSearchParams(query).toString()
        const url = `/api/v1${path}${search ? `?${search}` : ''}`
        const hasBody = route.method !== 'GET' && route.method !== 'DELETE'
        await send(url, {
          method: route.method,
          headers: { ...(hasBody && { 'content-type': 'application/json' }), ...authorization(who) },
          ...(hasBody && { body: JSON.stringify(body) ?? 'null' }),
        })
      }),
      RUNS,
    )
    await stillAnswers()
  })

  it('bodies that are not UTF-8, not JSON, or not what their content-type says', async () => {
    const target = fc.constantFrom(
      '/trpc/token.verify',
      '/trpc/token.verify,token.verify?batch=1',
      '/trpc/token.issue',
      '/trpc/auth.login',
      '/api/v1/tokens/verify',
      '/api/v1/tokens',
    )
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 16 }).map((raw) => Buffer.concat([Buffer.from('{"token":"'), raw, Buffer.from('"}')])),
      fc
        .uint8Array({ maxLength: 16 })
        .map((raw) => Buffer.concat([Buffer.from('{"0":{"token":"'), raw, Buffer.from('"},"1":{}}')])),
    )
    const contentType = fc.constantFrom('application/json', 'application/json; charset=latin1', 'text/plain', '')
    await fc.assert(
      fc.asyncProperty(target, bytes, contentType, caller, async (path, body, type, who) => {
        await send(path, {
          method: 'POST',
          headers: { ...(type && { 'content-type': type }), ...authorization(who) },
          body: new Uint8Array(body),
        })
      }),
      RUNS,
    )
    await stillAnswers()
  })
})

describe('verify on its fast path', () => {
  /** The same call twice: with a content-length (the fast path), and streamed, which tRPC's own adapter takes. */
  async function bothWays(path: string, body: string, who: 'verify' | 'noVerify' | 'none') {
    const headers = { 'content-type': 'application/json', ...authorization(who) }
    const payload = new TextEncoder().encode(body)
    const fast = await send(path, { method: 'POST', headers, body: payload })
    const stock = await send(path, {
      method: 'POST',
      headers,
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(payload)
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit & { headers: Record<string, string> })
    const seen = (answer: typeof fast) => ({
      status: answer.status,
      body: answer.body,
      contentType: answer.headers.get('content-type'),
      cacheControl: answer.headers.get('cache-control'),
      wwwAuthenticate: answer.headers.get('www-authenticate'),
      retryAfter: answer.headers.get('retry-after'),
    })
    expect(seen(fast)).toEqual(seen(stock))
    return fast
  }

  const verifyInput = fc.oneof(
    fc.record(
      {
        token: text,
        require: fc.record(
          {
            scopes: fc.array(fc.oneof(text, fc.constant('a:b')), { maxLength: 3 }),
            environment: fc.constantFrom('live', 'test', 'prod'),
          },
          { requiredKeys: [] },
        ),
        // Limits far from reach: both requests of a pair must meet the same state (0 is not a valid limit).
        ratelimit: fc.record({ name: text, limit: fc.constantFrom(0, 1_000_000), windowMs: fc.constant(60_000) }),
      },
      { requiredKeys: ['token'] },
    ),
    value,
  )

  it('answers single calls and batches as tRPC does, and counts each verify once', async () => {
    const request = fc.oneof(
      verifyInput.map((input) => ({ path: '/trpc/token.verify', body: JSON.stringify(input) ?? 'null', calls: 1 })),
      fc.array(verifyInput, { minLength: 1, maxLength: 20 }).map((inputs) => ({
        path: `/trpc/${inputs.map(() => 'token.verify').join(',')}?batch=1`,
        body: JSON.stringify(Object.fromEntries(inputs.map((input, index) => [index, input]))),
        calls: inputs.length,
      })),
    )
    await fc.assert(
      fc.asyncProperty(request, caller, async ({ path, body }, who) => {
        const before = await verifiesCounted()
        const answer = await bothWays(path, body, who)
        const parsed = JSON.parse(answer.body)
        // Each answered verify was counted once by each of the two requests.
        const answered = (Array.isArray(parsed) ? parsed : [parsed]).filter((item) => item.result).length
        expect(await verifiesCounted()).toBe(before + 2 * answered)
      }),
      { ...RUNS, numRuns: 100 },
    )
    await stillAnswers()
  })

  it('survives the batch that used to stop the process, and counts its one verify once', async () => {
    for (const who of ['verify', 'noVerify'] as const) {
      const before = await verifiesCounted()
      const reply = await fetch(`${tokend.url}/trpc/token.verify,token.verify?batch=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...authorization(who) },
        body: '{"0":{"token":"x"},"1":{}}',
      })
      const body: any = await reply.json()
      if (who === 'verify') {
        expect(reply.status).toBe(207)
        expect(body[0].result.data).toEqual({ valid: false, reason: 'MALFORMED' })
        expect(body[1].error.data.reason).toBe('invalid_input')
        expect(await verifiesCounted()).toBe(before + 1)
      } else {
        expect(body[0].error.data.reason).toBe('forbidden')
        expect(await verifiesCounted()).toBe(before)
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
      await stillAnswers()
    }
  })
})
