import type { AnyProcedure } from '@trpc/server'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openApiDocument } from '../src/http/rest.ts'
import { appRouter } from '../src/router.ts'
import { issue, startTestApp, type TestApp } from './harness.ts'

/**
 * Postgres cannot store NUL (U+0000) in text. Every string of every input, on tRPC and
 * REST, is refused with 400 invalid_input before any procedure runs — never a 500
 * from the database, a 503, or a write.
 */
let t: TestApp

beforeAll(async () => {
  t = await startTestApp({ TOKEND_SIGNUP: 'open' })
})

afterAll(() => t?.stop())

const NUL = 'a\u0000b'

type Def = { type: string; shape?: Record<string, unknown>; innerType?: Schema; in?: Schema }
type Schema = { _zod: { def: Def } }

/** The top-level fields of a procedure's input, looking through defaults, optionals and refinements. */
function fieldsOf(schema: unknown): string[] {
  let def = (schema as Schema | undefined)?._zod.def
  while (def && def.type !== 'object') def = (def.innerType ?? def.in)?._zod.def
  return Object.keys(def?.shape ?? {})
}

const procedures = Object.entries(appRouter._def.procedures as unknown as Record<string, AnyProcedure>).filter(
  ([, procedure]) => procedure._def.type !== 'subscription',
)
const fields = procedures.flatMap(([path, procedure]) =>
  fieldsOf(procedure._def.inputs[0]).map((field) => [path, procedure._def.type, field] as const),
)

async function rowCounts() {
  const { rows } = await sql<{ n: number }>`
    select (select count(*) from accounts) + (select count(*) from access_keys) + (select count(*) from users)
      + (select count(*) from audit_events) + (select count(*) from directs) + (select count(*) from sessions) as n
  `.execute(t.app.deps.db)
  return rows[0]?.n
}

function expectNulRefused(reply: { status: number; body: any }, field: string) {
  expect(reply.status).toBe(400)
  const data = reply.body.error.data ?? reply.body.error
  expect(data.reason ?? data.code).toBe('invalid_input')
  expect(data.issues.map((issue: { path: string }) => issue.path)).toContain(field)
}

describe('a NUL character in any input string', () => {
  it('the router has inputs to check', () => {
    expect(fields.length).toBeGreaterThan(30)
  })

  it.each(fields)('tRPC %s (%s) { %s: "a\\u0000b" } → 400 invalid_input', async (path, type, field) => {
    const before = await rowCounts()
    const input = { [field]: NUL }
    const reply = type === 'query' ? await t.operator.query(path, input) : await t.operator.mutation(path, input)
    expectNulRefused(reply, field)
    expect(await rowCounts()).toBe(before)
  })

  it('in nested fields and in array items, and in object keys', async () => {
    const key = await issue(t.operator)
    const cases: Array<[string, unknown, string]> = [
      ['token.verify', { token: key.token, ratelimit: { name: NUL, limit: 5, windowMs: 60_000 } }, 'ratelimit.name'],
      ['token.verify', { token: key.token, require: { scopes: ['a:b', NUL] } }, 'require.scopes.1'],
      ['token.verify', { token: NUL }, 'token'],
      ['token.issue', { name: 'x', environment: 'test', scopes: [NUL] }, 'scopes.0'],
      ['token.reportLeaked', { tokens: [key.token, NUL] }, 'tokens.1'],
      ['token.issue', { name: 'x', environment: 'test', [NUL]: 1 }, NUL],
    ]
    for (const [path, input, field] of cases) expectNulRefused(await t.operator.mutation(path, input), field)
    // The fast path (a single verify call) refuses it in the same words as tRPC.
    const batch = await t.operator.send<any>('/trpc/token.verify,token.verify?batch=1', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        0: { token: key.token },
        1: { token: key.token, ratelimit: { name: NUL, limit: 5, windowMs: 1000 } },
      }),
    })
    expect(batch.status).toBe(207)
    expect(batch.body[0].result.data.valid).toBe(true)
    expect(batch.body[1].error.data.reason).toBe('invalid_input')
  })

  it('over REST, in bodies, query strings and path parameters', async () => {
    const doc = openApiDocument()
    let checked = 0
    for (const [template, item] of Object.entries(doc.paths ?? {})) {
      for (const method of Object.keys(item as object)) {
        const path = template.replace(/\{\w+\}/g, encodeURIComponent(NUL))
        const url = `/api/v1${path}`
        const reply =
          method === 'get' || method === 'delete'
            ? await t.operator.send<any>(`${url}?name=${encodeURIComponent(NUL)}`, { method: method.toUpperCase() })
            : await t.operator.send<any>(url, {
                method: method.toUpperCase(),
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ name: NUL, token: NUL, username: NUL }),
              })
        // Either a field named here or a path parameter holds the NUL; the answer is a 400 either way.
        expect([400], `${method} ${url}: ${JSON.stringify(reply.body)}`).toContain(reply.status)
        expect(reply.body.reason).toBe('invalid_input')
        checked++
      }
    }
    expect(checked).toBeGreaterThan(20)
  })
})
