import * as grpc from '@grpc/grpc-js'
import { generateKey } from '@tokend/keys'
import { createTestDatabase, freePort, type RunningPostgres, startEmbeddedPostgres } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CheckRequest } from '../src/grpc/generated/envoy/service/auth/v3/CheckRequest.ts'
import type { CheckResponse__Output } from '../src/grpc/generated/envoy/service/auth/v3/CheckResponse.ts'
import { call, failure, tokendClients } from './grpc-client.ts'
import { issue, newAccount, startTestApp, type TestApp } from './harness.ts'

/**
 * envoy.service.auth.v3.Authorization/Check as Envoy calls it, from a client built from
 * tokend's subset of Envoy's .proto files (proto/envoy): what Envoy does with each answer
 * is fixed by those messages.
 */
let t: TestApp
let clients: ReturnType<typeof tokendClients>
let live: { token: string; id: string; accountId: string }

beforeAll(async () => {
  const port = await freePort()
  t = await startTestApp({ TOKEND_GRPC_PORT: String(port) })
  clients = tokendClients(`127.0.0.1:${port}`)
  live = await issue(t.operator, { environment: 'live', scopes: ['recordings:read', 'recordings:write'] })
}, 120_000)

afterAll(async () => {
  clients?.close()
  await t?.stop()
})

function checkRequest(
  headers: Record<string, string>,
  contextExtensions: Record<string, string> = {},
  path = '/v1/recordings',
): CheckRequest {
  return {
    attributes: {
      request: { http: { id: '1', method: 'GET', path, host: 'voice.example', scheme: 'https', headers } },
      contextExtensions,
    },
  }
}

const check = (request: CheckRequest) =>
  call<CheckRequest, CheckResponse__Output>(clients.authorization.Check, clients.authorization, request)

/** Response headers as a plain object. */
function headersOf(options: Array<{ header: { key: string; value: string } | null; appendAction: string }>) {
  for (const option of options) expect(option.appendAction).toBe('OVERWRITE_IF_EXISTS_OR_ADD')
  return Object.fromEntries(options.map((option) => [option.header?.key, option.header?.value]))
}

function denial(response: CheckResponse__Output) {
  expect(response.httpResponse).toBe('deniedResponse')
  const denied = response.deniedResponse
  if (!denied) throw new Error('no denied_response')
  return {
    rpcCode: response.status?.code,
    status: denied.status?.code,
    headers: headersOf(denied.headers as never),
    body: JSON.parse(denied.body),
  }
}

describe('Check allows', () => {
  it('a valid key meeting the route requirements, with the principal headers and forged ones dropped', async () => {
    const response = await check(
      checkRequest(
        {
          authorization: `Bearer ${live.token}`,
          'x-tokend-account-id': 'acc_forged',
          'x-tokend-admin': 'true',
          'x-request-id': 'r1',
        },
        { scopes: 'recordings:read, recordings:write', environment: 'live' },
      ),
    )
    expect(response.status?.code).toBe(0)
    expect(response.httpResponse).toBe('okResponse')
    expect(headersOf(response.okResponse?.headers as never)).toEqual({
      'x-tokend-account-id': live.accountId,
      'x-tokend-key-id': live.id,
      'x-tokend-environment': 'live',
      'x-tokend-scopes': 'recordings:read,recordings:write',
      'x-tokend-kind': 'access_key',
    })
    // The forged account header is overwritten above; any other x-tokend-* is removed.
    expect(response.okResponse?.headersToRemove).toEqual(['x-tokend-admin'])
  })

  it('the credential from header_map (encode_raw_headers) and from ?accesskey= of the path', async () => {
    const raw: CheckRequest = {
      attributes: {
        request: {
          http: {
            method: 'GET',
            path: '/v1/recordings',
            headerMap: { headers: [{ key: 'authorization', rawValue: Buffer.from(`Bearer ${live.token}`) }] },
          },
        },
      },
    }
    expect((await check(raw)).status?.code).toBe(0)
    expect((await check(checkRequest({}, {}, `/v1/recordings?accesskey=${live.token}`))).status?.code).toBe(0)
  })
})

describe('Check denies', () => {
  it('no credential: 401 with a bare challenge and the JSON error body', async () => {
    expect(denial(await check(checkRequest({})))).toEqual({
      rpcCode: grpc.status.UNAUTHENTICATED,
      status: 'Unauthorized',
      headers: {
        'www-authenticate': 'Bearer realm="tokend"',
        'cache-control': 'no-store',
        'content-type': 'application/json',
        'x-tokend-reason': 'missing_credential',
      },
      body: { error: { code: 'missing_credential', message: expect.stringContaining('send a credential') } },
    })
  })

  it('a revoked, unknown or malformed key: 401 invalid_token', async () => {
    const revoked = await issue(t.operator, { environment: 'live' })
    await t.operator.mutation('token.revoke', { id: revoked.id })
    for (const [token, code] of [
      [revoked.token, 'revoked_credential'],
      [generateKey('tk', 'live'), 'unknown_credential'],
      ['tk_live_nope', 'malformed_credential'],
      ['x'.repeat(5000), 'malformed_credential'],
    ] as const) {
      const denied = denial(await check(checkRequest({ authorization: `Bearer ${token}` })))
      expect(denied.status).toBe('Unauthorized')
      expect(denied.rpcCode).toBe(grpc.status.UNAUTHENTICATED)
      expect(denied.headers['www-authenticate']).toMatch(
        /^Bearer realm="tokend", error="invalid_token", error_description="/,
      )
      expect(denied.body.error.code).toBe(code)
    }
  })

  it('a missing scope: 403 insufficient_scope naming the scopes the route needs', async () => {
    const denied = denial(
      await check(checkRequest({ authorization: `Bearer ${live.token}` }, { scopes: 'recordings:read,billing:read' })),
    )
    expect(denied).toMatchObject({ rpcCode: grpc.status.PERMISSION_DENIED, status: 'Forbidden' })
    expect(denied.headers['www-authenticate']).toBe(
      'Bearer realm="tokend", error="insufficient_scope", error_description="the credential lacks a required scope", scope="recordings:read billing:read"',
    )
    expect(denied.body).toEqual({
      error: { code: 'insufficient_scope', message: 'the credential lacks a required scope: billing:read' },
    })
  })

  it('another environment: 403 wrong_environment', async () => {
    const denied = denial(await check(checkRequest({ authorization: `Bearer ${live.token}` }, { environment: 'test' })))
    expect(denied).toMatchObject({ status: 'Forbidden', body: { error: { code: 'wrong_environment' } } })
    expect(denied.headers['www-authenticate']).toContain('error="insufficient_scope"')
  })

  it('over the rate limit: 429 with Retry-After, the limit shared per account and route', async () => {
    const customer = await newAccount(t.operator, 'edge limits')
    const key = await issue(t.operator, { accountId: customer.accountId, environment: 'live' })
    const request = checkRequest(
      { authorization: `Bearer ${key.token}` },
      { ratelimit: `recordings-${Date.now()}:2:60000` },
    )
    expect((await check(request)).status?.code).toBe(0)
    expect((await check(request)).status?.code).toBe(0)
    const denied = denial(await check(request))
    expect(denied).toMatchObject({
      rpcCode: grpc.status.RESOURCE_EXHAUSTED,
      status: 'TooManyRequests',
      body: { error: { code: 'rate_limited' } },
    })
    expect(Number(denied.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(denied.headers['retry-after'])).toBeLessThanOrEqual(60)
  })

  it('a route misconfigured in Envoy: INVALID_ARGUMENT, which Envoy never turns into an allow', async () => {
    for (const extensions of <Record<string, string>[]>[
      { scopes: 'Not A Scope' },
      { environment: 'prod' },
      { ratelimit: 'x:0:60000' },
      { ratelimit: 'x' },
    ]) {
      const refused = await failure(check(checkRequest({ authorization: `Bearer ${live.token}` }, extensions)))
      expect(refused, JSON.stringify(extensions)).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        reason: 'invalid_input',
      })
    }
  })
})

describe('Check when tokend cannot decide', () => {
  let postgres: RunningPostgres & { destroy(): Promise<void> }
  let own: TestApp
  let ownClients: ReturnType<typeof tokendClients>

  beforeAll(async () => {
    postgres = await startEmbeddedPostgres()
    const database = await createTestDatabase(postgres.url)
    const port = await freePort()
    own = await startTestApp({ TOKEND_GRPC_PORT: String(port) }, database)
    ownClients = tokendClients(`127.0.0.1:${port}`)
  }, 120_000)

  afterAll(async () => {
    ownClients?.close()
    await own?.stop()
    await postgres?.destroy()
  })

  it('answers UNAVAILABLE with Postgres stopped, and decides again once it is back', async () => {
    const key = await issue(own.operator, { environment: 'live' })
    const ownCheck = (token: string) =>
      call<CheckRequest, CheckResponse__Output>(
        ownClients.authorization.Check,
        ownClients.authorization,
        checkRequest({ authorization: `Bearer ${token}` }),
      )
    expect((await ownCheck(key.token)).status?.code).toBe(0)
    await postgres.stop()
    try {
      for (const token of [key.token, generateKey('tk', 'live')]) {
        expect(await failure(ownCheck(token))).toMatchObject({ code: grpc.status.UNAVAILABLE, reason: 'unavailable' })
      }
      // Nothing to look up: a malformed key is refused without the database.
      expect(denial(await ownCheck('tk_live_nope')).status).toBe('Unauthorized')
    } finally {
      await postgres.start()
    }
    for (let waited = 0; waited < 20_000; waited += 250) {
      const answer = await ownCheck(key.token).catch(() => null)
      if (answer?.status?.code === 0) return
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    throw new Error('tokend did not recover')
  }, 60_000)
})
