import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKey } from '@tokend/keys'
import { freePort, type RunningTokend, startTokend } from '@tokend/testing'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokendClient, type RequireAuthOptions, requireAuth, type TokendClient } from '../src/index.ts'

let tokend: RunningTokend
let admin: TokendClient
let service: TokendClient
let api: { url: string; close(): Promise<void> }
const keys: Record<string, string> = {}

/** A sibling service with one route per requirement; each echoes `req.auth`. */
async function serve(client: TokendClient): Promise<{ url: string; close(): Promise<void> }> {
  const app = express()
  const routes: Record<string, RequireAuthOptions> = {
    any: {},
    read: { scopes: ['recordings:read'] },
    write: { scopes: ['recordings:read', 'recordings:write'] },
    live: { environment: 'live' },
    admin: { role: 'admin' },
  }
  for (const [path, options] of Object.entries(routes)) {
    app.get(`/${path}`, client.requireAuth(options), (req, res) => {
      res.json({ auth: req.auth })
    })
  }
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

async function get(path: string, authorization?: string) {
  const response = await fetch(api.url + path, { headers: authorization ? { authorization } : {} })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) }
}

beforeAll(async () => {
  tokend = await startTokend()
  admin = createTokendClient({ url: tokend.url, serviceKey: tokend.bootstrapKey })
  const issue = async (input: Record<string, unknown> = {}) =>
    admin.trpc.token.issue.mutate({ name: 'user', environment: 'test', scopes: ['recordings:read'], ...input })
  const verifier = await issue({ name: 'middleware test', environment: 'live', scopes: ['tokend:verify'] })
  service = createTokendClient({ url: tokend.url, serviceKey: verifier.token, realm: 'test-api' })
  api = await serve(service)

  const good = await issue()
  keys.good = good.token
  keys.live = (await issue({ environment: 'live' })).token
  keys.adminKey = (await issue({ role: 'admin' })).token
  keys.lookalike = `${good.token.slice(0, -1)}${good.token.endsWith('0') ? '1' : '0'}`
  keys.unknown = generateKey('tk', 'test')
  const revoked = await issue()
  await admin.trpc.token.revoke.mutate({ id: revoked.id })
  keys.revoked = revoked.token
  const disabled = await issue()
  await admin.trpc.token.setDisabled.mutate({ id: disabled.id, disabled: true })
  keys.disabled = disabled.token
  const expired = await issue({ expiresAt: new Date(Date.now() + 300).toISOString() })
  keys.expired = expired.token
  const account = await admin.trpc.account.create.mutate({ name: 'suspended', plan: 'paid' })
  keys.suspended = (await issue({ accountId: account.id })).token
  await admin.trpc.account.setStatus.mutate({ accountId: account.id, status: 'suspended' })
  keys.jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
  await new Promise((resolve) => setTimeout(resolve, 300))
})
afterAll(async () => {
  await api?.close()
  admin?.close()
  service?.close()
  await tokend?.stop()
})

describe('requireAuth', () => {
  it('puts the verified principal on req.auth', async () => {
    const reply = await get('/read', `Bearer ${keys.good}`)
    expect(reply.status).toBe(200)
    expect(reply.body.auth).toMatchObject({
      kind: 'access_key',
      tokenId: expect.stringMatching(/^tok_/),
      accountId: expect.stringMatching(/^acc_/),
      environment: 'test',
      scopes: ['recordings:read'],
    })
    expect(reply.body.auth).not.toHaveProperty('valid')
  })

  it.each([
    ['a header with no credential', '/any', undefined, 401, 'missing_credential'],
    ['a Basic header', '/any', 'Basic dXNlcjpwYXNz', 401, 'malformed_credential'],
    ['a lookalike key', '/any', 'lookalike', 401, 'malformed_credential'],
    ['a key that was never issued', '/any', 'unknown', 401, 'unknown_credential'],
    ['a revoked key', '/any', 'revoked', 401, 'revoked_credential'],
    ['a disabled key', '/any', 'disabled', 401, 'disabled_credential'],
    ['an expired key', '/any', 'expired', 401, 'expired_credential'],
    ["a suspended account's key", '/any', 'suspended', 401, 'account_suspended'],
    ['a JWT tokend does not know', '/any', 'jwt', 401, 'malformed_credential'],
    ['a missing scope', '/write', 'good', 403, 'insufficient_scope'],
    ['the wrong environment', '/live', 'good', 403, 'wrong_environment'],
    ['a manager key where admin is required', '/admin', 'good', 403, 'insufficient_scope'],
  ])('maps %s to %i %s, never echoing the credential', async (_, path, name, status, code) => {
    const credential = name && keys[name]
    const authorization = name === undefined ? undefined : credential ? `Bearer ${credential}` : name
    const reply = await get(path, authorization)
    expect({ status: reply.status, code: reply.body.error?.code }).toEqual({ status, code })
    expect(Object.keys(reply.body.error).sort()).toEqual(['code', 'message'])
    if (credential) {
      expect(reply.text).not.toContain(credential)
      expect([...reply.headers.values()].join('\n')).not.toContain(credential)
    }
    const challenge = reply.headers.get('www-authenticate')
    if (status === 401) {
      expect(challenge).toMatch(/^Bearer realm="test-api"/)
      if (code !== 'missing_credential') expect(challenge).toContain('error="invalid_token"')
    }
    if (code === 'insufficient_scope') expect(challenge).toContain('error="insufficient_scope"')
    expect(reply.headers.get('cache-control')).toBe('no-store')
  })

  it('names the missing scopes', async () => {
    const reply = await get('/write', `Bearer ${keys.good}`)
    expect(reply.body.error.message).toContain('recordings:write')
    expect(reply.headers.get('www-authenticate')).toContain('scope="recordings:read recordings:write"')
  })

  it('takes access keys in ?accesskey= and JWTs in ?token=, and refuses them swapped', async () => {
    const good = encodeURIComponent(keys.good as string)
    expect((await get(`/read?accesskey=${good}`)).status).toBe(200)
    const swapped = await get(`/read?token=${good}`)
    expect(swapped.status).toBe(401)
    expect(swapped.body.error.code).toBe('wrong_credential_parameter')
    expect(swapped.text).not.toContain(keys.good)
    const jwtAsKey = await get(`/read?accesskey=${keys.jwt}`)
    expect(jwtAsKey.body.error.code).toBe('wrong_credential_parameter')

    const sent = service.stats.networkVerifies
    const jwt = await get(`/read?token=${keys.jwt}`)
    expect(service.stats.networkVerifies).toBe(sent + 1) // a JWT goes to tokend, which has the last word
    expect(jwt.status).toBe(401)
  })

  it('refuses more than one credential with 400', async () => {
    const good = encodeURIComponent(keys.good as string)
    expect((await get(`/read?accesskey=${good}`, `Bearer ${keys.good}`)).body.error.code).toBe('multiple_credentials')
    const twice = await get(`/read?accesskey=${good}&accesskey=${good}`)
    expect(twice.status).toBe(400)
    expect(twice.body.error.code).toBe('multiple_credentials')
  })

  it('rejects malformed access keys without asking tokend', async () => {
    const sent = service.stats.networkVerifies
    await settle() // earlier requests' log lines may still be on their way
    const logged = tokend.verifyRequests()
    for (const bad of [keys.lookalike, 'tk_live_short', generateKey('zz', 'live')]) {
      expect((await get(`/any?accesskey=${bad}`)).body.error.code).toBe('malformed_credential')
      expect((await get('/any', `Bearer ${bad}`)).body.error.code).toBe('malformed_credential')
    }
    expect(service.stats.networkVerifies).toBe(sent)
    expect(service.stats.localRejects).toBeGreaterThanOrEqual(6)
    await settle()
    expect(tokend.verifyRequests()).toBe(logged)
  })

  it('answers 503 when tokend is unreachable or refuses the service key, never passing; logs each kind once', async () => {
    const logged: string[] = []
    const logger = { info() {}, warn: (_fields: object, message: string) => logged.push(message) }
    const cases = [
      [
        'unreachable',
        createTokendClient({ url: `http://127.0.0.1:${await freePort()}`, serviceKey: tokend.bootstrapKey, logger }),
      ],
      ['key_rejected', createTokendClient({ url: tokend.url, serviceKey: generateKey('tk', 'live'), logger })],
      ['missing_scope', createTokendClient({ url: tokend.url, serviceKey: keys.good as string, logger })],
    ] as const
    for (const [problem, client] of cases) {
      await expect(client.ready()).rejects.toMatchObject({ name: 'TokendSetupError', problem })
      const other = await serve(client)
      try {
        for (let i = 0; i < 3; i++) {
          const response = await fetch(`${other.url}/any`, { headers: { authorization: `Bearer ${keys.good}` } })
          expect(response.status).toBe(503)
          expect(await response.json()).toEqual({ error: { code: 'auth_unavailable', message: expect.any(String) } })
        }
      } finally {
        await other.close()
        client.close()
      }
    }
    expect(logged).toEqual([
      expect.stringMatching(
        /^tokend is unreachable at http:\/\/127\.0\.0\.1:\d+ .*check url and that tokend is running/,
      ),
      expect.stringMatching(/^tokend rejected the service key \(401 invalid_token\).*check serviceKey/),
      expect.stringMatching(/^the service key may not verify: it lacks the tokend:verify scope \(403 forbidden\)/),
    ])
    await expect(service.ready()).resolves.toBeUndefined()
  })

  it('refuses options that could only fail later, naming the option', () => {
    const serviceKey = tokend.bootstrapKey
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ url: tokend.url }, /serviceKey is missing/],
      [{ url: tokend.url, serviceKey: undefined }, /serviceKey is missing/],
      [{ url: tokend.url, serviceKey: `${serviceKey}\n` }, /serviceKey is not a tk_ access key/],
      [{ url: 'localhost:3000', serviceKey }, /url must be an http/],
      [{ url: 'not a url', serviceKey }, /url must be tokend's base URL/],
      [{ url: 'http://admin:pw@127.0.0.1', serviceKey }, /url must not hold a user name/],
      [{ url: tokend.url, serviceKey, timeoutMs: -1 }, /timeoutMs must be a number/],
    ]
    for (const [options, message] of cases) {
      expect(() => createTokendClient(options as never)).toThrow(message)
    }
  })

  it('maps RATE_LIMITED to 429 with Retry-After in whole seconds', async () => {
    // tokend cannot rate-limit verifies yet, so this one answer comes from a stand-in verify.
    const app = express()
    const limited = { name: 'recordings.create', limit: 1, windowMs: 60_000 }
    const seen: unknown[] = []
    const fake = {
      realm: 'test-api',
      reportFailure() {},
      verify: async (_credential: string, options: unknown) => {
        seen.push(options)
        return { valid: false as const, reason: 'RATE_LIMITED' as const, retryAfterMs: 1_500 }
      },
    }
    app.get('/limited', requireAuth(fake, { ratelimit: limited }), (_req, res) => {
      res.end()
    })
    const server = createServer(app)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const response = await fetch(`http://127.0.0.1:${port}/limited`, { headers: { authorization: `Bearer x` } })
      expect(response.status).toBe(429)
      expect(response.headers.get('retry-after')).toBe('2')
      expect(((await response.json()) as any).error.code).toBe('rate_limited')
      // The caller's address goes along, for keys bound to networks.
      expect(seen).toEqual([{ ratelimit: limited, clientIp: '127.0.0.1' }])
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 200))
}
