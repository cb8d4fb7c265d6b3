import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { Validator } from '@seriousme/openapi-schema-validator'
import { type RunningTokend, startTokend } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * REST and OpenAPI (issue 8) as a non-TypeScript service sees them: plain fetch
 * against a real tokend process on a fresh database.
 */
let tokend: RunningTokend
let api: string
let admin: string

beforeAll(async () => {
  tokend = await startTokend()
  api = `${tokend.url}/api/v1`
  admin = tokend.bootstrapKey
})
afterAll(async () => {
  await tokend?.stop()
})

interface Call {
  key?: string | null
  body?: unknown
  /** Sent as is, instead of `body` as JSON. */
  raw?: string
  contentType?: string
}

async function call(method: string, path: string, options: Call = {}) {
  const key = options.key === undefined ? admin : options.key
  const headers: Record<string, string> = {}
  if (key) headers.authorization = `Bearer ${key}`
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json'
  const res = await fetch(`${api}${path}`, { method, headers, body })
  const text = await res.text()
  expect(text, 'no stack traces').not.toMatch(/\bat .+:\d+:\d+/)
  if (key) expect(text, 'the caller key is never echoed').not.toContain(key)
  return { status: res.status, headers: res.headers, body: JSON.parse(text) }
}

/** An error answer: its status, and an RFC 9457 problem carrying the stable reason. */
function expectError(
  reply: { status: number; headers: Headers; body: any },
  status: number,
  reason: string,
  path?: string,
) {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status)
  expect(reply.headers.get('content-type')).toBe('application/problem+json')
  expect(reply.body).toEqual(
    expect.objectContaining({
      type: `https://tokend.dev/problems/${reason}`,
      title: expect.any(String),
      status,
      detail: expect.any(String),
      instance: path ? `/api/v1${path}` : expect.stringMatching(/^\/api\/v1\//),
      reason,
      requestId: expect.any(String),
    }),
  )
  expect(reply.body.instance, 'no query string in the instance').not.toContain('?')
}

// SPEC §5 (and §8, §9): every procedure a caller may use, where REST puts it.
const ENDPOINTS: Array<[procedure: string, method: string, path: string]> = [
  ['token.verify', 'post', '/tokens/verify'],
  ['token.issue', 'post', '/tokens'],
  ['token.list', 'get', '/tokens'],
  ['token.get', 'get', '/tokens/{id}'],
  ['token.revoke', 'post', '/tokens/{id}/revoke'],
  ['token.setDisabled', 'put', '/tokens/{id}/disabled'],
  ['token.rotate', 'post', '/tokens/{id}/rotate'],
  ['token.update', 'patch', '/tokens/{id}'],
  ['token.reportLeaked', 'post', '/tokens/leaked'],
  ['token.exchange', 'post', '/tokens/exchange'],
  ['me', 'get', '/me'],
  ['account.create', 'post', '/accounts'],
  ['account.list', 'get', '/accounts'],
  ['account.get', 'get', '/account'],
  ['account.setStatus', 'put', '/accounts/{accountId}/status'],
  ['account.setPlan', 'put', '/accounts/{accountId}/plan'],
  ['audit.list', 'get', '/audit'],
  ['auth.signup', 'post', '/auth/signup'],
  ['auth.login', 'post', '/auth/login'],
  ['auth.logout', 'post', '/auth/logout'],
  ['auth.boot', 'post', '/auth/boot'],
  ['user.create', 'post', '/users'],
  ['user.list', 'get', '/users'],
  ['user.setRole', 'put', '/users/{id}/role'],
  ['user.remove', 'delete', '/users/{id}'],
  ['direct.create', 'post', '/directs'],
  ['direct.list', 'get', '/directs'],
  ['direct.delete', 'delete', '/directs/{id}'],
  ['signingKey.list', 'get', '/signing-keys'],
  ['signingKey.rotate', 'post', '/signing-keys/rotate'],
]

describe('/openapi.json', () => {
  let doc: any
  beforeAll(async () => {
    const res = await fetch(`${tokend.url}/openapi.json`)
    expect(res.status).toBe(200)
    doc = await res.json()
  })

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./)
    const validator = new Validator()
    const result = await validator.validate(structuredClone(doc))
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it("passes an independent linter's recommended rules (@redocly/cli lint)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokend-openapi-'))
    try {
      const file = join(dir, 'openapi.json')
      await writeFile(file, JSON.stringify(doc))
      const cli = join(dirname(createRequire(import.meta.url).resolve('@redocly/cli/package.json')), 'bin/cli.js')
      // Exit code 0 is the verdict: no error under the recommended rules; warnings are listed too.
      const { stdout, stderr } = await promisify(execFile)(
        process.execPath,
        [cli, 'lint', file, '--extends=recommended', '--format=json'],
        { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, timeout: 60_000 },
      ).catch((error: { stdout?: string; stderr?: string }) => {
        throw new Error(`redocly lint failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`)
      })
      const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: unknown[] }
      expect(report.problems, stderr).toEqual([])
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 90_000)

  it('has a path for every procedure, with bearer auth where credentials are needed', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, item]: [string, any]) =>
      Object.entries(item).map(([method, operation]: [string, any]) => ({ path, method, operation })),
    )
    for (const [procedure, method, path] of ENDPOINTS) {
      const found = operations.find((op) => op.method === method && op.path === path)
      expect(found, `${procedure} at ${method.toUpperCase()} ${path}`).toBeDefined()
      expect(found?.operation.operationId).toBe(procedure.replace('.', '-'))
      const open = ['auth.signup', 'auth.login', 'auth.boot'].includes(procedure)
      expect(found?.operation.security, procedure).toEqual(open ? [] : [{ bearer: [] }])
    }
    expect(operations).toHaveLength(ENDPOINTS.length)
    expect(doc.servers).toEqual([{ url: '/api/v1' }])
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
  })

  it("documents verify's result and the error shape with its stable reason", () => {
    const verify = doc.paths['/tokens/verify'].post
    expect(verify.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/VerifyResult',
    })
    const [granted, denied] = doc.components.schemas.VerifyResult.oneOf
    expect(granted.oneOf.map((result: any) => result.properties.kind.const)).toEqual([
      'access_key',
      'session',
      'direct',
      'derived',
    ])
    expect(denied.properties.reason.enum).toEqual(
      expect.arrayContaining(['MALFORMED', 'REVOKED', 'RATE_LIMITED', 'WRONG_AUDIENCE']),
    )
    expect(verify.responses['401']).toEqual({ $ref: '#/components/responses/Unauthorized' })
    expect(doc.components.responses.Unauthorized.headers['WWW-Authenticate']).toBeDefined()
    expect(doc.components.responses.TooManyRequests.headers['Retry-After']).toBeDefined()
    expect(doc.components.schemas.Problem.required).toEqual(['type', 'title', 'status', 'detail', 'reason'])
    expect(Object.keys(doc.components.responses.Unauthorized.content)).toEqual(['application/problem+json'])
    expect(doc.paths['/tokens/{id}'].get.responses['404']).toEqual({ $ref: '#/components/responses/NotFound' })
    expect(doc.paths['/tokens'].post.responses['409']).toEqual({ $ref: '#/components/responses/Conflict' })
  })
})

describe('REST', () => {
  it('issues, verifies, revokes and verifies again with plain fetch', async () => {
    const issued = await call('POST', '/tokens', {
      body: { name: 'voice-api', environment: 'test', scopes: ['recordings:read'] },
    })
    expect(issued.status).toBe(200)
    expect(issued.headers.get('cache-control')).toBe('no-store')
    expect(issued.body).toMatchObject({
      name: 'voice-api',
      environment: 'test',
      token: expect.stringMatching(/^tk_test_/),
    })
    const { token, id } = issued.body

    const verified = await call('POST', '/tokens/verify', { body: { token, require: { scopes: ['recordings:read'] } } })
    expect(verified).toMatchObject({ status: 200, body: { valid: true, kind: 'access_key', tokenId: id } })

    const got = await call('GET', `/tokens/${id}`)
    expect(got.body).toMatchObject({ id, status: 'active', revokedAt: null })

    const revoked = await call('POST', `/tokens/${id}/revoke`)
    expect(revoked).toMatchObject({ status: 200, body: { id, revokedAt: expect.any(String) } })
    // Final, and repeating it gives the same answer.
    expect((await call('POST', `/tokens/${id}/revoke`)).body).toEqual(revoked.body)

    expect((await call('POST', '/tokens/verify', { body: { token } })).body).toEqual({
      valid: false,
      reason: 'REVOKED',
    })
    const listed = await call('GET', '/tokens?status=revoked&limit=10')
    expect(listed.body.items.map((item: { id: string }) => item.id)).toContain(id)
  })

  it('answers as /trpc does, byte for byte', async () => {
    const { body: issued } = await call('POST', '/tokens', { body: { name: 'same', environment: 'test' } })
    const rest = await fetch(`${api}/tokens/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: issued.token }),
    })
    const trpc = await fetch(`${tokend.url}/trpc/token.verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: issued.token }),
    })
    expect(`{"result":{"data":${await rest.text()}}}`).toBe(await trpc.text())
    // A key never used, so its lastUsedAt cannot change between the two reads.
    const { body: unused } = await call('POST', '/tokens', { body: { name: 'unused', environment: 'test' } })
    const get = await fetch(`${api}/tokens/${unused.id}`, { headers: { authorization: `Bearer ${admin}` } })
    const input = encodeURIComponent(JSON.stringify({ id: unused.id }))
    const viaTrpc = await fetch(`${tokend.url}/trpc/token.get?input=${input}`, {
      headers: { authorization: `Bearer ${admin}` },
    })
    expect(`{"result":{"data":${await get.text()}}}`).toBe(await viaTrpc.text())
  })

  it('reads query parameters as numbers and booleans only where the schema asks, and path parameters', async () => {
    const page = await call('GET', '/tokens?limit=1')
    expect(page.status).toBe(200)
    expect(page.body.items).toHaveLength(1)
    expect(page.body.nextCursor).toEqual(expect.any(String))
    const next = await call('GET', `/tokens?limit=1&cursor=${page.body.nextCursor}`)
    expect(next.body.items[0].id).not.toBe(page.body.items[0].id)

    const { body: key } = await call('POST', '/tokens', { body: { name: 'toggle', environment: 'test' } })
    // A string is not a boolean in a JSON body: no coercion there.
    expectError(await call('PUT', `/tokens/${key.id}/disabled`, { body: { disabled: 'false' } }), 400, 'invalid_input')
    const disabled = await call('PUT', `/tokens/${key.id}/disabled`, { body: { disabled: true } })
    expect(disabled.body).toMatchObject({ id: key.id, disabled: true, status: 'disabled' })
    // ...and /trpc still rejects what REST's query strings would coerce.
    const trpc = await fetch(`${tokend.url}/trpc/token.setDisabled`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: key.id, disabled: 'false' }),
    })
    expect(trpc.status).toBe(400)

    const me = await call('GET', '/me')
    expect(me.body).toMatchObject({ kind: 'access_key', operator: true, role: 'admin' })
  })

  it('answers bad requests with a clean 4xx and a stable reason', async () => {
    const { body: issued } = await call('POST', '/tokens', { body: { name: 'bad-paths', environment: 'test' } })

    expectError(await call('POST', '/tokens/verify', { raw: '{"token": ' }), 400, 'invalid_input')

    const anonymous = await call('POST', '/tokens/verify', { key: null, body: { token: issued.token } })
    expectError(anonymous, 401, 'invalid_token')
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="tokend"')
    expectError(await call('GET', '/tokens', { key: 'tk_live_nonsense' }), 401, 'invalid_token')

    // A key without tokend:verify may not verify (the problem and the challenge name the scope); a manager may not issue.
    const noScope = await call('POST', '/tokens/verify', { key: issued.token, body: { token: admin } })
    expectError(noScope, 403, 'forbidden', '/tokens/verify')
    expect(noScope.body.missingScopes).toEqual(['tokend:verify'])
    expect(noScope.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="tokend:verify"/)
    expectError(
      await call('POST', '/tokens', { key: issued.token, body: { name: 'x', environment: 'test' } }),
      403,
      'forbidden',
    )

    expectError(
      await call('GET', '/tokens/tok_01HZZZZZZZZZZZZZZZZZZZZZZZ'),
      404,
      'not_found',
      '/tokens/tok_01HZZZZZZZZZZZZZZZZZZZZZZZ',
    )
    expectError(await call('POST', '/tokens/tok_01HZZZZZZZZZZZZZZZZZZZZZZZ/revoke'), 404, 'not_found')

    const invalid = await call('POST', '/tokens', { body: { name: '', environment: 'staging' } })
    expectError(invalid, 400, 'invalid_input')
    expect(invalid.body.issues.map((issue: { path: string }) => issue.path).sort()).toEqual(['environment', 'name'])
    expectError(await call('GET', '/tokens?limit=many'), 400, 'invalid_input', '/tokens')
    expectError(await call('GET', '/tokens?surprise=1'), 400, 'invalid_input')

    expectError(await call('GET', '/no/such/thing'), 404, 'not_found')
    const wrongMethod = await call('DELETE', '/tokens/verify')
    expectError(wrongMethod, 405, 'invalid_input', '/tokens/verify')
    expect(wrongMethod.headers.get('allow')).toContain('POST')
    expectError(
      await call('POST', '/tokens/verify', { raw: 'token=x', contentType: 'application/x-www-form-urlencoded' }),
      415,
      'invalid_input',
    )
    expectError(
      await call('POST', '/auth/login', { key: null, body: { username: 'nobody', password: 'x' } }),
      401,
      'invalid_credentials',
    )
  })

  it("leaves tRPC's error shape as it was: problems are REST's alone", async () => {
    const res = await fetch(
      `${tokend.url}/trpc/token.get?input=${encodeURIComponent('{"id":"tok_01HZZZZZZZZZZZZZZZZZZZZZZZ"}')}`,
      {
        headers: { authorization: `Bearer ${admin}` },
      },
    )
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await res.json()) as any
    expect(body.error.data.reason).toBe('not_found')
    expect(body.error).not.toHaveProperty('type')
    expect(Object.keys(body.error.data).sort()).toEqual(['code', 'httpStatus', 'path', 'reason'])
  })

  it('answers 429 rate_limited with Retry-After past the key creations per minute', async () => {
    const { body: account } = await call('POST', '/accounts', { body: { name: 'busy', plan: 'paid' } })
    let reply = await call('POST', '/tokens', { body: { name: 'k', environment: 'test', accountId: account.id } })
    for (let i = 0; i < 20 && reply.status === 200; i++) {
      reply = await call('POST', '/tokens', { body: { name: 'k', environment: 'test', accountId: account.id } })
    }
    expectError(reply, 429, 'rate_limited')
    expect(Number(reply.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(reply.body.retryAfterMs).toEqual(expect.any(Number))
  })

  it('logs REST requests with their request id and path, never a key or a query string', async () => {
    const before = tokend.process.output().length
    const requestId = `rest-${Date.now()}`
    const res = await fetch(`${api}/tokens?limit=3&cursor=secret-looking-cursor`, {
      headers: { authorization: `Bearer ${admin}`, 'x-request-id': requestId },
    })
    expect(res.headers.get('x-request-id')).toBe(requestId)
    await expect.poll(() => tokend.process.output()).toContain(requestId)
    // Only what was logged since: the bootstrap banner shows the key once, by design.
    const output = tokend.process.output().slice(before)
    const line = output.split('\n').find((entry) => entry.includes(requestId) && entry.includes('"path"'))
    expect(line).toContain('"path":"/api/v1/tokens"')
    expect(output).not.toContain('secret-looking-cursor')
    expect(output).not.toContain(admin)
  })
})
