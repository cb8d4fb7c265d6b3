import { generateKey } from '@tokend/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, newAccount, startTestApp, type TestApp } from './harness.ts'

/**
 * /edge/auth as nginx, Traefik and Envoy's HTTP ext_authz call it (their paths and
 * headers), and RFC 7662 introspection; the answers are the ext_authz ones (same
 * edgeCheck) in HTTP form.
 */
let t: TestApp
let key: { token: string; id: string; accountId: string }

beforeAll(async () => {
  t = await startTestApp()
  key = await issue(t.operator, { environment: 'live', scopes: ['recordings:read'] })
}, 120_000)

afterAll(async () => {
  await t?.stop()
})

const edge = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  fetch(`${t.url}${path}`, { method, headers })

/** What Traefik's ForwardAuth sends for a client's request. */
const traefik = (clientUri: string, headers: Record<string, string>, query = '') =>
  edge(`/edge/auth${query}`, {
    'x-forwarded-method': 'DELETE',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'voice.example',
    'x-forwarded-uri': clientUri,
    'x-forwarded-for': '203.0.113.9',
    ...headers,
  })

const json = (response: Response): Promise<any> => response.json()

const principal = (response: Response) =>
  Object.fromEntries([...response.headers].filter(([name]) => name.startsWith('x-tokend-')))

describe('forward-auth allows', () => {
  it('Traefik: the credential of the forwarded request, requirements from the auth URL, principal headers back', async () => {
    const response = await traefik(
      '/v1/recordings/r1',
      { authorization: `Bearer ${key.token}` },
      '?scope=recordings:read&environment=live',
    )
    expect(response.status).toBe(200)
    expect(principal(response)).toEqual({
      'x-tokend-account-id': key.accountId,
      'x-tokend-key-id': key.id,
      'x-tokend-environment': 'live',
      'x-tokend-scopes': 'recordings:read',
      'x-tokend-kind': 'access_key',
    })
    expect(await response.text()).toBe('')
    // ?accesskey= in the forwarded URI, by §10's rules.
    expect((await traefik(`/v1/recordings?accesskey=${key.token}`, {})).status).toBe(200)
  })

  it('Envoy HTTP ext_authz: the original path after the prefix, requirements in x-tokend-require-* headers', async () => {
    const response = await edge(
      `/edge/auth/v1/recordings/r1?accesskey=${key.token}&page=2`,
      {
        'x-tokend-require-scopes': 'recordings:read',
        'x-tokend-require-environment': 'live',
        'x-tokend-account-id': 'acc_forged',
        'x-tokend-admin': 'yes',
      },
      'POST',
    )
    expect(response.status).toBe(200)
    expect(response.headers.get('x-tokend-account-id')).toBe(key.accountId)
    // Every other x-tokend-* header leaves the request before it goes upstream.
    const removed = response.headers.get('x-envoy-auth-headers-to-remove')?.split(', ')
    expect(removed).toContain('x-tokend-admin')
    expect(removed).not.toContain('x-tokend-account-id')
  })

  it('nginx: any method, the original URI in X-Original-URI', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
      const response = await edge(
        '/edge/auth?scope=recordings:read',
        { authorization: `Bearer ${key.token}`, 'x-original-uri': '/v1/recordings', 'x-original-method': method },
        method,
      )
      expect(response.status, method).toBe(200)
    }
  })
})

describe('forward-auth refuses', () => {
  it('no credential: 401, a bare RFC 6750 challenge, the JSON body and x-tokend-reason', async () => {
    const response = await traefik('/v1/recordings', {})
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="tokend"')
    expect(response.headers.get('x-tokend-reason')).toBe('missing_credential')
    expect(await json(response)).toEqual({ error: { code: 'missing_credential', message: expect.any(String) } })
  })

  it('a revoked, unknown or misplaced credential: 401 invalid_token', async () => {
    const revoked = await issue(t.operator, { environment: 'live' })
    await t.operator.mutation('token.revoke', { id: revoked.id })
    for (const [headers, uri, code] of [
      [{ authorization: `Bearer ${revoked.token}` }, '/v1/x', 'revoked_credential'],
      [{ authorization: `Bearer ${generateKey('tk', 'live')}` }, '/v1/x', 'unknown_credential'],
      [{}, `/v1/x?token=${key.token}`, 'wrong_credential_parameter'],
      [{ authorization: 'Basic YTpi' }, '/v1/x', 'malformed_credential'],
    ] as const) {
      const response = await traefik(uri, headers)
      expect(response.status).toBe(401)
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="tokend", error="invalid_token"/)
      expect((await json(response)).error.code).toBe(code)
    }
  })

  it('a missing scope: 403 insufficient_scope with the scopes the route needs', async () => {
    const response = await traefik(
      '/v1/recordings',
      { authorization: `Bearer ${key.token}` },
      '?scope=recordings:read&scope=recordings:write',
    )
    expect(response.status).toBe(403)
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"')
    expect(response.headers.get('www-authenticate')).toContain('scope="recordings:read recordings:write"')
    expect(response.headers.get('x-tokend-message')).toBe('the credential lacks a required scope: recordings:write')
    expect((await json(response)).error.code).toBe('insufficient_scope')
  })

  it('a rate limit: 429 with Retry-After, or 403 rate_limited for nginx, which cannot pass a 429 on', async () => {
    const customer = await newAccount(t.operator, 'forward limits')
    const limited = await issue(t.operator, { accountId: customer.accountId, environment: 'live' })
    const path = `/edge/auth?ratelimit=voice-${Date.now()}:1:60000`
    const headers = { authorization: `Bearer ${limited.token}`, 'x-original-uri': '/v1/recordings' }
    expect((await edge(path, headers)).status).toBe(200)
    const plain = await edge(path, headers)
    expect(plain.status).toBe(429)
    expect(Number(plain.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    const forNginx = await edge(path, { ...headers, 'x-tokend-proxy': 'nginx' })
    expect(forNginx.status).toBe(403)
    expect(forNginx.headers.get('x-tokend-reason')).toBe('rate_limited')
    expect(Number(forNginx.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  it('a misconfigured route: 400 invalid_input, never an allow', async () => {
    for (const query of ['?scope=Bad Scope', '?environment=prod', '?ratelimit=x:0:1000', '?ratelimit=nope']) {
      const response = await traefik('/v1/x', { authorization: `Bearer ${key.token}` }, query)
      expect(response.status, query).toBe(400)
      expect((await json(response)).error.code).toBe('invalid_input')
    }
  })
})

describe('POST /oauth/introspect (RFC 7662)', () => {
  const introspect = (
    body: string,
    caller: string | null = t.bootstrapKey,
    type = 'application/x-www-form-urlencoded',
  ) =>
    fetch(`${t.url}/oauth/introspect`, {
      method: 'POST',
      headers: { 'content-type': type, ...(caller && { authorization: `Bearer ${caller}` }) },
      body,
    })

  it('describes an active key with the standard fields and tokend’s own', async () => {
    const expiring = await issue(t.operator, { environment: 'live', scopes: ['a:b', 'c:d'], expiresIn: '30d' })
    const response = await introspect(`token=${encodeURIComponent(expiring.token)}&token_type_hint=access_token`)
    expect(response.status).toBe(200)
    const body = await json(response)
    expect(body).toMatchObject({
      active: true,
      scope: 'a:b c:d',
      client_id: expiring.id,
      sub: expiring.accountId,
      exp: Math.floor(Date.parse(String(expiring.expiresAt)) / 1000),
      token_type: 'Bearer',
      kind: 'access_key',
      token_id: expiring.id,
      account_id: expiring.accountId,
      environment: 'live',
    })
    expect(Math.abs(body.iat - Date.parse(String(expiring.createdAt)) / 1000)).toBeLessThanOrEqual(1)
  })

  it('answers {"active":false} and nothing else for anything not valid', async () => {
    const revoked = await issue(t.operator)
    await t.operator.mutation('token.revoke', { id: revoked.id })
    for (const token of [revoked.token, generateKey('tk', 'live'), 'garbage', 'x'.repeat(5000)]) {
      const response = await introspect(`token=${encodeURIComponent(token)}`)
      expect(await response.text()).toBe('{"active":false}')
    }
  })

  it('refuses callers as token.verify does, with RFC 6750 challenges', async () => {
    const anonymous = await introspect(`token=${key.token}`, null)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer realm="tokend"/)
    const noVerify = await introspect(`token=${key.token}`, key.token)
    expect(noVerify.status).toBe(403)
    expect(noVerify.headers.get('www-authenticate')).toMatch(/^Bearer realm="tokend", error="insufficient_scope"/)
    expect((await json(noVerify)).error.code).toBe('forbidden')
  })

  it('refuses a body without a token, or not a form, with 400', async () => {
    for (const [body, type] of [
      ['', 'application/x-www-form-urlencoded'],
      ['token=', 'application/x-www-form-urlencoded'],
      [JSON.stringify({ token: key.token }), 'application/json'],
    ] as const) {
      const response = await introspect(body, t.bootstrapKey, type)
      expect(response.status, body).toBe(400)
      expect((await json(response)).error.code).toBe('invalid_input')
    }
  })
})

describe('RFC 6750 on tokend’s own 403s', () => {
  it('a manager key refused a write gets an insufficient_scope challenge', async () => {
    const manager = await issue(t.operator, { role: 'manager' })
    const reply = await t.operator.as(manager.token).mutation('token.issue', { name: 'x', environment: 'test' })
    expect(reply.status).toBe(403)
    expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer realm="tokend", error="insufficient_scope"/)
  })
})
