import * as grpc from '@grpc/grpc-js'
import { digestKey } from '@tokend/keys'
import { freePort, query } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cacheKey } from '../src/cache/cache-key.ts'
import type { CheckRequest } from '../src/grpc/generated/envoy/service/auth/v3/CheckRequest.ts'
import type { CheckResponse__Output } from '../src/grpc/generated/envoy/service/auth/v3/CheckResponse.ts'
import type { VerifyRequest } from '../src/grpc/generated/tokend/v1/VerifyRequest.ts'
import type { VerifyResponse__Output } from '../src/grpc/generated/tokend/v1/VerifyResponse.ts'
import { findKeyRecord } from '../src/tokens/token.repository.ts'
import { bearer, call, failure, tokendClients } from './grpc-client.ts'
import { type Caller, issue, startTestApp, type TestApp } from './harness.ts'

/**
 * SPEC §14 key controls on one tokend: `meta` set at issue and returned by verify, and
 * `allowedCidrs` refusing a key presented from elsewhere as IP_NOT_ALLOWED on every
 * path (tRPC, REST, the fast path, gRPC, ext_authz, forward-auth, tokend's own
 * procedures). `t` trusts a proxy on loopback (TOKEND_TRUST_PROXY), `plain` trusts none.
 */
let t: TestApp
let plain: TestApp
let clients: ReturnType<typeof tokendClients>
const META = { plan: 'gold', customer: { id: 42, tags: ['a', 'b'] } }
let bound: { token: string; id: string; accountId: string }

beforeAll(async () => {
  const port = await freePort()
  ;[t, plain] = await Promise.all([
    startTestApp({ TOKEND_GRPC_PORT: String(port), TOKEND_TRUST_PROXY: 'loopback' }),
    startTestApp(),
  ])
  clients = tokendClients(`127.0.0.1:${port}`)
  bound = await issue(t.operator, {
    environment: 'live',
    scopes: ['calls:read'],
    meta: META,
    allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
  })
}, 120_000)

afterAll(async () => {
  clients?.close()
  await Promise.all([t?.stop(), plain?.stop()])
})

const trpcVerify = async (input: Record<string, unknown>, caller: Caller = t.operator) => {
  const reply = await caller.mutation('token.verify', input)
  return { status: reply.status, body: reply.body?.result?.data ?? reply.body?.error }
}

/** REST: `/tokens/verify` is the fast path; with a trailing slash the same call goes through the REST router. */
const restVerify = async (input: Record<string, unknown>, path = '/api/v1/tokens/verify') => {
  const reply = await t.operator.send<any>(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  })
  return { status: reply.status, body: reply.body }
}

const transports = [
  ['tRPC', trpcVerify],
  ['REST', restVerify],
  ['REST (router)', (input: Record<string, unknown>) => restVerify(input, '/api/v1/tokens/verify/')],
] as const

async function keyCount(app: TestApp): Promise<number> {
  const rows = await query<{ n: number }>(app.databaseUrl, 'select count(*)::int as n from access_keys')
  return rows[0]?.n as number
}

describe('meta', () => {
  it('is set at issue, shown by token.get, and returned by verify on every transport', async () => {
    const got = await t.operator.query('token.get', { id: bound.id })
    expect(got.body.result.data).toMatchObject({ meta: META, allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] })
    expect(bound).toMatchObject({ meta: META })
    for (const [, verify] of transports) {
      const { status, body } = await verify({ token: bound.token, clientIp: '10.1.2.3' })
      expect(status).toBe(200)
      expect(body).toMatchObject({ valid: true, tokenId: bound.id, meta: META })
      expect(body.allowedCidrs).toEqual(['10.0.0.0/8', '2001:db8::/32'])
    }
  })

  it('is absent from the answer for a key without meta', async () => {
    const key = await issue(t.operator)
    const { body } = await trpcVerify({ token: key.token })
    expect(body.valid).toBe(true)
    expect(body).not.toHaveProperty('meta')
    expect(body).not.toHaveProperty('allowedCidrs')
  })

  it('of exactly 4 KB is accepted', async () => {
    const meta = { pad: 'x'.repeat(4096 - JSON.stringify({ pad: '' }).length) }
    expect(Buffer.byteLength(JSON.stringify(meta))).toBe(4096)
    const key = await issue(t.operator, { meta })
    expect((await trpcVerify({ token: key.token })).body.meta).toEqual(meta)
  })
})

describe('rotation', () => {
  it('gives the successor the same meta and networks', async () => {
    const rotated = await t.operator.mutation('token.rotate', { id: bound.id })
    expect(rotated.status).toBe(200)
    expect(rotated.body.result.data).toMatchObject({ meta: META, allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] })
    const token = rotated.body.result.data.token
    expect((await trpcVerify({ token, clientIp: '10.0.0.1' })).body).toMatchObject({ valid: true, meta: META })
    expect((await trpcVerify({ token, clientIp: '192.0.2.1' })).body.reason).toBe('IP_NOT_ALLOWED')
  })
})

describe('a narrowing update and a verify in flight', () => {
  it('never caches the wider row a verify read before the update', async () => {
    const key = await issue(t.operator, { scopes: ['calls:read', 'calls:write'] })
    const digest = digestKey(key.token)
    // Force the interleaving: the verify reads the row, the update commits and is applied, then the read completes.
    const staleRead = t.app.deps.cache.lookup(cacheKey(digest), async () => {
      const row = (await findKeyRecord(t.app.deps.pool, digest))?.record ?? null
      expect((await t.operator.mutation('token.update', { id: key.id, scopes: ['calls:read'] })).status).toBe(200)
      return row
    })
    expect((await staleRead)?.scopes).toEqual(['calls:read', 'calls:write']) // that verify began before
    const after = await trpcVerify({ token: key.token, require: { scopes: ['calls:write'] } })
    expect(after.body).toEqual({ valid: false, reason: 'INSUFFICIENT_SCOPE', missingScopes: ['calls:write'] })
  })
})

describe('bad key controls at issue', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['meta over 4 KB', { meta: { pad: 'x'.repeat(4096) } }],
    ['meta over 4 KB in UTF-8 bytes', { meta: { pad: 'é'.repeat(2100) } }],
    ['meta an array', { meta: [1, 2] }],
    ['meta a string', { meta: 'gold' }],
    ['meta a number', { meta: 42 }],
    ['meta holding NUL', { meta: { a: 'x\u0000y' } }],
    ['meta with a NUL key', { meta: { 'a\u0000': 1 } }],
    ['meta holding a lone surrogate', { meta: { a: '\ud800' } }],
    ['a CIDR with too long a prefix', { allowedCidrs: ['10.0.0.0/33'] }],
    ['an IPv6 CIDR with too long a prefix', { allowedCidrs: ['2001:db8::/129'] }],
    ['a short IPv4 form', { allowedCidrs: ['10.1/8'] }],
    ['a word', { allowedCidrs: ['banana'] }],
    ['an empty entry', { allowedCidrs: [''] }],
    ['a zone id', { allowedCidrs: ['fe80::1%eth0/64'] }],
    ['33 networks', { allowedCidrs: Array.from({ length: 33 }, (_, i) => `10.${i}.0.0/16`) }],
    ['networks not a list', { allowedCidrs: '10.0.0.0/8' }],
  ]

  for (const [what, input] of bad) {
    it(`refuses ${what} with 400 invalid_input and writes nothing (tRPC and REST)`, async () => {
      const before = await keyCount(t)
      const trpc = await t.operator.mutation('token.issue', { name: 'bad', environment: 'test', ...input })
      expect(trpc.status).toBe(400)
      expect(trpc.body.error.data.reason).toBe('invalid_input')
      const rest = await t.operator.send<any>('/api/v1/tokens', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bad', environment: 'test', ...input }),
      })
      expect(rest.status).toBe(400)
      expect(rest.body.reason).toBe('invalid_input')
      expect(await keyCount(t)).toBe(before)
    })
  }

  it('normalizes networks: host bits cleared, bare addresses, IPv4-mapped IPv6, repeats dropped', async () => {
    const key = await issue(t.operator, {
      allowedCidrs: ['10.1.2.3/8', '192.0.2.7', '2001:DB8:0:0::1/48', '::ffff:198.51.100.0/120', '10.0.0.0/8'],
    })
    expect(key.allowedCidrs).toEqual(['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/48', '198.51.100.0/24'])
  })
})

describe('IP_NOT_ALLOWED', () => {
  for (const [name, verify] of transports) {
    it(`${name}: a bound key is valid from inside its networks and refused from outside or without clientIp`, async () => {
      for (const inside of ['10.1.2.3', '::ffff:10.200.0.1', '2001:db8:1::5']) {
        expect((await verify({ token: bound.token, clientIp: inside })).body).toMatchObject({ valid: true })
      }
      for (const outside of ['192.0.2.1', '11.0.0.1', '2001:db9::1', '::ffff:192.0.2.1', undefined]) {
        const input = outside === undefined ? { token: bound.token } : { token: bound.token, clientIp: outside }
        const { status, body } = await verify(input)
        expect(status).toBe(200)
        expect(body).toEqual({ valid: false, reason: 'IP_NOT_ALLOWED' })
      }
    })

    it(`${name}: a clientIp that is not an address is 400 invalid_input`, async () => {
      for (const clientIp of ['banana', '10.1', '999.1.1.1', '', 'x'.repeat(100)]) {
        const { status, body } = await verify({ token: bound.token, clientIp })
        expect(status).toBe(400)
        expect(body.data?.reason ?? body.reason).toBe('invalid_input')
      }
    })
  }

  it('never hides a final denial: a revoked bound key is REVOKED from anywhere', async () => {
    const key = await issue(t.operator, { allowedCidrs: ['10.0.0.0/8'] })
    await t.operator.mutation('token.revoke', { id: key.id })
    expect((await trpcVerify({ token: key.token, clientIp: '192.0.2.1' })).body.reason).toBe('REVOKED')
  })

  it('is checked before requirements and rate limits: an outside call spends nothing', async () => {
    const key = await issue(t.operator, { allowedCidrs: ['10.0.0.0/8'] })
    const ratelimit = { name: 'ip-test', limit: 1, windowMs: 60_000 }
    const outside = await trpcVerify({ token: key.token, clientIp: '192.0.2.1', ratelimit, require: { scopes: ['x'] } })
    expect(outside.body).toEqual({ valid: false, reason: 'IP_NOT_ALLOWED' })
    expect((await trpcVerify({ token: key.token, clientIp: '10.0.0.1', ratelimit })).body.valid).toBe(true)
  })

  it('keys without networks do not care about clientIp', async () => {
    const key = await issue(t.operator)
    for (const clientIp of ['192.0.2.1', '2001:db8::1']) {
      expect((await trpcVerify({ token: key.token, clientIp })).body.valid).toBe(true)
    }
  })

  it('gRPC Verify takes client_ip (6) and returns meta_json (15)', async () => {
    const verify = (request: VerifyRequest) =>
      call<VerifyRequest, VerifyResponse__Output>(
        clients.tokens.Verify,
        clients.tokens,
        request,
        bearer(t.bootstrapKey),
      )
    const inside = await verify({ token: bound.token, clientIp: '10.9.9.9' })
    expect(inside).toMatchObject({ valid: true, tokenId: bound.id })
    expect(JSON.parse(inside.metaJson)).toEqual(META)
    expect(await verify({ token: bound.token, clientIp: '192.0.2.1' })).toMatchObject({
      valid: false,
      reason: 'IP_NOT_ALLOWED',
      metaJson: '',
    })
    expect(await verify({ token: bound.token })).toMatchObject({ valid: false, reason: 'IP_NOT_ALLOWED' })
    const plainKey = await issue(t.operator)
    expect((await verify({ token: plainKey.token })).metaJson).toBe('')
    // A service key bound to networks the gRPC peer (loopback) is not in may not verify at all.
    const service = await issue(t.operator, { scopes: ['tokend:verify'], allowedCidrs: ['10.0.0.0/8'] })
    const refused = await failure(
      call<VerifyRequest, VerifyResponse__Output>(
        clients.tokens.Verify,
        clients.tokens,
        { token: plainKey.token },
        bearer(service.token),
      ),
    )
    expect([refused.code, refused.reason]).toEqual([grpc.status.PERMISSION_DENIED, 'ip_not_allowed'])
  })

  it('ext_authz: the downstream source address, or X-Forwarded-For when the source is a trusted proxy', async () => {
    const check = (source: string, headers: Record<string, string> = {}) =>
      call<CheckRequest, CheckResponse__Output>(clients.authorization.Check, clients.authorization, {
        attributes: {
          source: { address: { socketAddress: { address: source, portValue: 40_000 } } },
          request: {
            http: {
              id: '1',
              method: 'GET',
              path: '/v1/calls',
              host: 'voice.example',
              headers: { authorization: `Bearer ${bound.token}`, ...headers },
            },
          },
        },
      })
    expect((await check('10.3.3.3')).httpResponse).toBe('okResponse')
    const outside = await check('192.0.2.1')
    expect(outside.httpResponse).toBe('deniedResponse')
    expect(outside.deniedResponse?.status?.code).toBe('Forbidden')
    expect(JSON.parse(outside.deniedResponse?.body ?? '{}').error.code).toBe('ip_not_allowed')
    // Loopback is trusted here (TOKEND_TRUST_PROXY): its X-Forwarded-For names the client.
    expect((await check('127.0.0.1', { 'x-forwarded-for': '10.4.4.4' })).httpResponse).toBe('okResponse')
    // An untrusted peer's X-Forwarded-For is not believed.
    expect((await check('192.0.2.1', { 'x-forwarded-for': '10.4.4.4' })).httpResponse).toBe('deniedResponse')
  })

  it('forward-auth: the client per TOKEND_TRUST_PROXY; 403 ip_not_allowed outside', async () => {
    const edge = (app: TestApp, forwardedFor: string) =>
      fetch(`${app.url}/edge/auth`, {
        headers: {
          authorization: `Bearer ${bound.token}`,
          'x-forwarded-for': forwardedFor,
          'x-original-uri': '/v1/calls',
        },
      })
    const inside = await edge(t, '10.5.5.5')
    expect(inside.status).toBe(200)
    expect(inside.headers.get('x-tokend-key-id')).toBe(bound.id)
    const outside = await edge(t, '192.0.2.1')
    expect(outside.status).toBe(403)
    expect(outside.headers.get('x-tokend-reason')).toBe('ip_not_allowed')
    expect(outside.headers.get('www-authenticate')).toMatch(/^Bearer realm="tokend"/)
    expect(((await outside.json()) as any).error.code).toBe('ip_not_allowed')
    // `plain` trusts no proxy: the forged header buys nothing; the socket (loopback) is outside.
    const other = await issue(plain.operator, { allowedCidrs: ['10.0.0.0/8'] })
    const forged = await fetch(`${plain.url}/edge/auth`, {
      headers: { authorization: `Bearer ${other.token}`, 'x-forwarded-for': '10.5.5.5' },
    })
    expect(forged.status).toBe(403)
    expect(forged.headers.get('x-tokend-reason')).toBe('ip_not_allowed')
  })

  it("binds a key's own calls to tokend too: outside its networks it is not a valid caller", async () => {
    const elsewhere = await issue(plain.operator, { role: 'admin', allowedCidrs: ['10.0.0.0/8'] })
    const refused = await plain.operator.as(elsewhere.token).query('token.list')
    expect(refused.status).toBe(403)
    expect(refused.body.error.data.reason).toBe('ip_not_allowed')
    const rest = await plain.operator.as(elsewhere.token).send<any>('/api/v1/tokens', { method: 'GET' })
    expect([rest.status, rest.body.reason]).toEqual([403, 'ip_not_allowed'])
    const here = await issue(plain.operator, { role: 'admin', allowedCidrs: ['127.0.0.0/8', '::1/128'] })
    expect((await plain.operator.as(here.token).query('token.list')).status).toBe(200)
  })

  it('RFC 7662 introspection takes client_ip', async () => {
    const introspect = (form: Record<string, string>) =>
      t.operator.send<any>('/oauth/introspect', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      })
    expect((await introspect({ token: bound.token, client_ip: '10.0.0.9' })).body.active).toBe(true)
    expect((await introspect({ token: bound.token, client_ip: '192.0.2.1' })).body).toEqual({ active: false })
    expect((await introspect({ token: bound.token })).body).toEqual({ active: false })
    expect((await introspect({ token: bound.token, client_ip: 'banana' })).status).toBe(400)
  })
})

describe('OpenAPI', () => {
  it('describes token.update as PATCH /tokens/{id}, and the key controls on issue and verify', async () => {
    const doc = (await fetch(`${t.url}/openapi.json`).then((response) => response.json())) as any
    const update = doc.paths['/tokens/{id}'].patch
    expect(update).toBeDefined()
    const body = update.requestBody.content['application/json'].schema
    expect(Object.keys(body.properties).sort()).toEqual(
      ['allowedCidrs', 'credits', 'detail', 'expiresAt', 'meta', 'name', 'scopes'].sort(),
    )
    expect(Object.keys(update.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '404', '409']))
    const issue = doc.paths['/tokens'].post.requestBody.content['application/json'].schema
    expect(issue.properties).toHaveProperty('meta')
    expect(issue.properties).toHaveProperty('allowedCidrs')
    const verify = doc.paths['/tokens/verify'].post
    expect(verify.requestBody.content['application/json'].schema.properties).toHaveProperty('clientIp')
    expect(JSON.stringify(doc.components.schemas.VerifyResult)).toContain('IP_NOT_ALLOWED')
  })
})
