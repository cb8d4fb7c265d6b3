import { freePort, freshDatabase } from '@tokend/testing'
import fc from 'fast-check'
import {
  base64url,
  type CryptoKey,
  createLocalJWKSet,
  decodeProtectedHeader,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
} from 'jose'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { changeTransaction, keyChange } from '../src/changes/change-events.ts'
import type { CheckRequest } from '../src/grpc/generated/envoy/service/auth/v3/CheckRequest.ts'
import type { CheckResponse__Output } from '../src/grpc/generated/envoy/service/auth/v3/CheckResponse.ts'
import type { VerifyRequest } from '../src/grpc/generated/tokend/v1/VerifyRequest.ts'
import type { VerifyResponse__Output } from '../src/grpc/generated/tokend/v1/VerifyResponse.ts'
import { bearer, call, tokendClients } from './grpc-client.ts'
import { type Caller, issue, newAccount, newSession, startTestApp, type TestApp } from './harness.ts'

/**
 * Derived tokens (SPEC §14): token.exchange on tRPC and REST, what the token says, and
 * verify on every transport — two replicas on one database, so a parent's revocation
 * on one is seen on the other through the change channel, the way keys' are.
 */
let database: Awaited<ReturnType<typeof freshDatabase>>
let a: TestApp
let b: TestApp
let clients: ReturnType<typeof tokendClients>
let customer: Awaited<ReturnType<typeof newAccount>>

beforeAll(async () => {
  database = await freshDatabase()
  const port = await freePort()
  a = await startTestApp({ TOKEND_GRPC_PORT: String(port) }, database)
  b = await startTestApp({}, database)
  clients = tokendClients(`127.0.0.1:${port}`)
  customer = await newAccount(a.operator, 'derived')
}, 60_000)

afterAll(async () => {
  clients?.close()
  await a?.stop()
  await b?.stop()
  await database?.drop()
})

/** A key of the customer account with these scopes; `caller` calls with it. */
async function parentKey(scopes = ['recordings:read', 'recordings:write'], input: Record<string, unknown> = {}) {
  const issued = await issue(customer.admin, { environment: 'live', scopes, ...input })
  return Object.assign(issued, { caller: customer.admin.as(issued.token) })
}

async function exchange(caller: Caller, input: unknown) {
  const reply = await caller.mutation('token.exchange', input)
  if (reply.status !== 200) throw new Error(`exchange failed: ${JSON.stringify(reply.body)}`)
  return reply.body.result.data as {
    token: string
    tokenType: string
    parent: string
    audience: string
    scopes: string[]
    expiresAt: string
  }
}

async function verifyOn(app: TestApp, token: string, require?: Record<string, unknown>) {
  const reply = await app.operator
    .as(a.bootstrapKey)
    .mutation('token.verify', { token, ...(require ? { require } : {}) })
  expect(reply.status).toBe(200)
  return reply.body.result.data
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(base64url.decode(token.split('.')[1] as string)))
}

/** The current signing key, read from Postgres as only someone with database access could. */
async function ourKey(): Promise<{ kid: string; key: CryptoKey }> {
  const row = await a.app.deps.db
    .selectFrom('signing_keys')
    .selectAll()
    .where('retired_at', 'is', null)
    .orderBy('id', 'desc')
    .executeTakeFirstOrThrow()
  return { kid: row.id, key: (await importJWK(row.private_jwk, 'EdDSA')) as CryptoKey }
}

async function sign(claims: Record<string, unknown>, header: Record<string, unknown>, key: CryptoKey) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'tokend-derived+jwt', ...header }).sign(key)
}

/** Polls `check` until it holds; returns how long that took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  return performance.now() - started
}

describe('token.exchange', () => {
  it('signs an EdDSA JWT with a published kid: kind derived, its parent, audience, scopes and ≤ 15 min', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'voice-api', scopes: ['recordings:read'] })
    expect(derived).toMatchObject({
      tokenType: 'Bearer',
      parent: parent.id,
      audience: 'voice-api',
      scopes: ['recordings:read'],
    })
    const header = decodeProtectedHeader(derived.token)
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'tokend-derived+jwt' })
    const jwks = await fetch(`${a.url}/.well-known/jwks.json`).then((response) => response.json() as Promise<any>)
    expect(jwks.keys.map((key: { kid: string }) => key.kid)).toContain(header.kid)
    // Anyone holding the published key set can check it: that is what makes it verifiable offline.
    const { payload } = await jwtVerify(derived.token, createLocalJWKSet(jwks), {
      algorithms: ['EdDSA'],
      audience: 'voice-api',
      typ: 'tokend-derived+jwt',
    })
    expect(payload).toMatchObject({
      kind: 'derived',
      parent: parent.id,
      sub: parent.id,
      acc: customer.accountId,
      scope: 'recordings:read',
    })
    expect((payload.exp as number) - (payload.iat as number)).toBe(300)
    expect(Date.parse(derived.expiresAt)).toBe((payload.exp as number) * 1000)
    expect(JSON.stringify(payload)).not.toContain(parent.token)
  })

  it("holds every scope of the key when none are asked for, and lives as long as asked (≤ 900 s), never past the key's expiry", async () => {
    const parent = await parentKey(['a:read', 'b:read'])
    const all = await exchange(parent.caller, { audience: 'x', ttlSeconds: 900 })
    expect(all.scopes).toEqual(['a:read', 'b:read'])
    const claims = claimsOf(all.token)
    expect((claims.exp as number) - (claims.iat as number)).toBe(900)
    const short = await exchange(parent.caller, { audience: 'x', ttlSeconds: 1 })
    expect(Date.parse(short.expiresAt) - Date.now()).toBeLessThanOrEqual(1_000)

    const expiring = await parentKey(['a:read'], { expiresAt: new Date(Date.now() + 60_000).toISOString() })
    const capped = await exchange(expiring.caller, { audience: 'x', ttlSeconds: 900 })
    expect(Date.parse(capped.expiresAt)).toBeLessThanOrEqual(Date.parse(String(expiring.expiresAt)))
  })

  it('grants exactly the scopes asked for when the key holds them all, and nothing otherwise (property)', async () => {
    const held = ['a:read', 'a:write', 'b:read', 'b:write', 'c:write']
    const parent = await parentKey(held)
    const scope = fc.constantFrom(...held, 'c:read', 'a:admin', 'tokend:scanner')
    await fc.assert(
      fc.asyncProperty(fc.array(scope, { maxLength: 6 }), async (asked) => {
        const reply = await parent.caller.mutation('token.exchange', { audience: 'x', scopes: asked })
        const allHeld = asked.every((wanted) => held.includes(wanted))
        expect(reply.status).toBe(allHeld ? 200 : 403)
        if (!allHeld) return
        const granted = reply.body.result.data.scopes as string[]
        expect(granted).toEqual([...new Set(asked)])
        expect(await verifyOn(b, reply.body.result.data.token)).toMatchObject({ valid: true, scopes: granted })
      }),
      { numRuns: 40, seed: 20261203 },
    )
  })

  it('is on REST and in the OpenAPI document', async () => {
    const parent = await parentKey()
    const reply = await fetch(`${a.url}/api/v1/tokens/exchange`, {
      method: 'POST',
      headers: { authorization: `Bearer ${parent.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ audience: 'voice-api', scopes: ['recordings:write'], ttlSeconds: 60 }),
    })
    expect(reply.status).toBe(200)
    const body = (await reply.json()) as { token: string; scopes: string[] }
    expect(body.scopes).toEqual(['recordings:write'])
    expect(await verifyOn(a, body.token)).toMatchObject({ valid: true, kind: 'derived', tokenId: parent.id })
    const document = (await fetch(`${a.url}/openapi.json`).then((response) => response.json())) as any
    expect(document.paths['/tokens/exchange'].post).toBeDefined()
  })

  const badInputs: Array<[string, unknown]> = [
    ['ttlSeconds over 900', { audience: 'x', ttlSeconds: 901 }],
    ['ttlSeconds 0', { audience: 'x', ttlSeconds: 0 }],
    ['ttlSeconds negative', { audience: 'x', ttlSeconds: -5 }],
    ['ttlSeconds fractional', { audience: 'x', ttlSeconds: 1.5 }],
    ['ttlSeconds a string', { audience: 'x', ttlSeconds: '300' }],
    ['no audience', {}],
    ['an empty audience', { audience: '' }],
    ['an audience with NUL', { audience: 'voice\u0000api' }],
    ['an audience with a space', { audience: 'voice api' }],
    ['an audience with a newline', { audience: 'voice\napi' }],
    ['an audience of 201 characters', { audience: 'a'.repeat(201) }],
    ['an audience that is not a string', { audience: ['voice-api'] }],
    ['a malformed scope', { audience: 'x', scopes: ['Not A Scope'] }],
    ['a scope with NUL', { audience: 'x', scopes: ['recordings:read\u0000'] }],
    ['an unknown field', { audience: 'x', parent: 'tok_other' }],
    ['no input at all', undefined],
  ]
  for (const [name, input] of badInputs) {
    it(`refuses ${name} with 400 invalid_input, over tRPC and REST`, async () => {
      const parent = await parentKey()
      const reply = await parent.caller.mutation('token.exchange', input)
      expect(reply.status).toBe(400)
      expect(reply.body.error.data.reason).toBe('invalid_input')
      const rest = await fetch(`${a.url}/api/v1/tokens/exchange`, {
        method: 'POST',
        headers: { authorization: `Bearer ${parent.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(input ?? {}),
      })
      expect(rest.status).toBe(400)
    })
  }

  it('refuses scopes the key does not hold: 403 insufficient_scope naming them', async () => {
    const parent = await parentKey(['recordings:read'])
    const reply = await parent.caller.mutation('token.exchange', {
      audience: 'x',
      scopes: ['recordings:read', 'recordings:write', 'tokend:verify'],
    })
    expect(reply.status).toBe(403)
    expect(reply.body.error.data.reason).toBe('insufficient_scope')
    expect(reply.body.error.message).toContain('recordings:write')
    expect(reply.body.error.message).toContain('tokend:verify')
    expect(reply.headers.get('www-authenticate')).toContain('insufficient_scope')
    const rest = await fetch(`${a.url}/api/v1/tokens/exchange`, {
      method: 'POST',
      headers: { authorization: `Bearer ${parent.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ audience: 'x', scopes: ['other:read'] }),
    })
    expect(rest.status).toBe(403)
    expect(rest.headers.get('content-type')).toContain('application/problem+json')
    expect(await rest.json()).toMatchObject({
      status: 403,
      reason: 'insufficient_scope',
      missingScopes: ['other:read'],
    })
  })

  it('takes an access key only: no credential, a revoked, disabled or unknown key is 401; a session or a derived token is 403', async () => {
    const revoked = await parentKey()
    await customer.admin.mutation('token.revoke', { id: revoked.id })
    const disabled = await parentKey()
    await customer.admin.mutation('token.setDisabled', { id: disabled.id, disabled: true })
    for (const caller of [revoked.caller, disabled.caller, a.operator.as(undefined), a.operator.as('tk_live_nope')]) {
      const reply = await caller.mutation('token.exchange', { audience: 'x' })
      expect(reply.status).toBe(401)
      expect(reply.body.error.data.reason).toBe('invalid_token')
    }
    const { session } = await newSession(customer.admin, { role: 'admin' })
    expect((await session.mutation('token.exchange', { audience: 'x' })).status).toBe(403)
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    const again = await a.operator.as(derived.token).mutation('token.exchange', { audience: 'x' })
    expect(again.status).toBe(403)
    // Nor may it call anything else of tokend's.
    expect((await a.operator.as(derived.token).query('token.list')).status).toBe(403)
  })
})

describe('verify of a derived token', () => {
  it('answers kind derived on tRPC, REST and gRPC: the parent as tokenId, the token’s own scopes, its audience', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'voice-api', scopes: ['recordings:read'] })
    const expected = {
      valid: true,
      kind: 'derived',
      tokenId: parent.id,
      accountId: customer.accountId,
      environment: 'live',
      role: 'manager',
      scopes: ['recordings:read'],
      name: 'test key',
      expiresAt: derived.expiresAt,
      audience: 'voice-api',
    }
    expect(await verifyOn(a, derived.token)).toEqual(expected)
    expect(await verifyOn(b, derived.token, { audience: 'voice-api', scopes: ['recordings:read'] })).toEqual(expected)
    const rest = await fetch(`${a.url}/api/v1/tokens/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.bootstrapKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: derived.token, require: { audience: 'voice-api' } }),
    })
    expect(await rest.json()).toEqual(expected)
    const grpcAnswer = await call<VerifyRequest, VerifyResponse__Output>(
      clients.tokens.Verify,
      clients.tokens,
      { token: derived.token, audience: 'voice-api' },
      bearer(a.bootstrapKey),
    )
    expect(grpcAnswer).toMatchObject({ valid: true, kind: 'derived', tokenId: parent.id, scopes: ['recordings:read'] })
  })

  it('passes the edge (forward-auth, ext_authz, introspection) with kind derived, and an audience it requires', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'voice-api', scopes: ['recordings:read'] })
    const edge = (query: string) =>
      fetch(`${a.url}/edge/auth?${query}`, { headers: { authorization: `Bearer ${derived.token}` } })
    const allowed = await edge('scope=recordings:read&audience=voice-api')
    expect(allowed.status).toBe(200)
    expect(allowed.headers.get('x-tokend-kind')).toBe('derived')
    expect(allowed.headers.get('x-tokend-key-id')).toBe(parent.id)
    const introspected = await fetch(`${a.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.bootstrapKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: derived.token }),
    }).then((response) => response.json() as Promise<Record<string, unknown>>)
    expect(introspected).toMatchObject({
      active: true,
      kind: 'derived',
      aud: 'voice-api',
      scope: 'recordings:read',
      token_id: parent.id,
      exp: Math.floor(Date.parse(derived.expiresAt) / 1000),
    })
    const checkWith = (contextExtensions: Record<string, string>) =>
      call<CheckRequest, CheckResponse__Output>(clients.authorization.Check, clients.authorization, {
        attributes: {
          request: {
            http: {
              id: '1',
              method: 'GET',
              path: '/v1/recordings',
              host: 'voice.example',
              scheme: 'https',
              headers: { authorization: `Bearer ${derived.token}` },
            },
          },
          contextExtensions,
        },
      })
    const envoyAllowed = await checkWith({ audience: 'voice-api', scopes: 'recordings:read' })
    expect(envoyAllowed.httpResponse).toBe('okResponse')
    const envoyDenied = await checkWith({ audience: 'billing' })
    expect(envoyDenied.httpResponse).toBe('deniedResponse')
    expect(envoyDenied.deniedResponse?.status?.code).toBe('Forbidden')
    const other = await edge('audience=billing')
    expect(other.status).toBe(403)
    expect(other.headers.get('x-tokend-reason')).toBe('wrong_audience')
    const wider = await edge('scope=recordings:write')
    expect(wider.status).toBe(403)
    expect(wider.headers.get('x-tokend-reason')).toBe('insufficient_scope')
  })

  it('refuses another audience with WRONG_AUDIENCE on every transport, and scopes beyond the token’s with INSUFFICIENT_SCOPE', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'voice-api', scopes: ['recordings:read'] })
    expect(await verifyOn(a, derived.token, { audience: 'billing' })).toEqual({
      valid: false,
      reason: 'WRONG_AUDIENCE',
    })
    const rest = await fetch(`${a.url}/api/v1/tokens/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.bootstrapKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: derived.token, require: { audience: 'billing' } }),
    })
    expect(await rest.json()).toEqual({ valid: false, reason: 'WRONG_AUDIENCE' })
    const grpcAnswer = await call<VerifyRequest, VerifyResponse__Output>(
      clients.tokens.Verify,
      clients.tokens,
      { token: derived.token, audience: 'billing' },
      bearer(a.bootstrapKey),
    )
    expect(grpcAnswer).toMatchObject({ valid: false, reason: 'WRONG_AUDIENCE' })
    // The parent holds recordings:write; the token does not.
    expect(await verifyOn(a, derived.token, { scopes: ['recordings:write'] })).toEqual({
      valid: false,
      reason: 'INSUFFICIENT_SCOPE',
      missingScopes: ['recordings:write'],
    })
    // Access keys are bound to no audience.
    expect(await verifyOn(a, parent.token, { audience: 'billing' })).toMatchObject({ valid: true })
    // An audience requirement is parsed like any input.
    for (const audience of ['', 'a b', 'x\u0000']) {
      const reply = await a.operator.mutation('token.verify', { token: derived.token, require: { audience } })
      expect(reply.status).toBe(400)
    }
  })

  it('is rejected at once when its parent is revoked: on the replica that revoked it, and on the other within the bound', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    // Both replicas have the parent in their verify cache.
    expect(await verifyOn(a, derived.token)).toMatchObject({ valid: true })
    expect(await verifyOn(b, derived.token)).toMatchObject({ valid: true })
    const revoked = await customer.admin.mutation('token.revoke', { id: parent.id })
    expect(revoked.status).toBe(200)
    expect(await verifyOn(a, derived.token)).toEqual({ valid: false, reason: 'REVOKED' })
    const lag = await within(1_000, async () => (await verifyOn(b, derived.token)).valid === false)
    expect(await verifyOn(b, derived.token)).toEqual({ valid: false, reason: 'REVOKED' })
    process.stdout.write(`derived token rejected on the other replica ${lag.toFixed(1)} ms after revoke returned\n`)
  })

  it("takes the parent's reason when it is disabled, expires or its account is suspended, and works again when re-enabled", async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    expect(await verifyOn(a, derived.token)).toMatchObject({ valid: true })
    await customer.admin.mutation('token.setDisabled', { id: parent.id, disabled: true })
    expect(await verifyOn(a, derived.token)).toEqual({ valid: false, reason: 'DISABLED' })
    await customer.admin.mutation('token.setDisabled', { id: parent.id, disabled: false })
    expect(await verifyOn(a, derived.token)).toMatchObject({ valid: true })

    // Rotation with the old key ending now: the old key's tokens end with it.
    const rotated = await customer.admin.mutation('token.rotate', { id: parent.id, oldExpiresIn: 0 })
    expect(rotated.status).toBe(200)
    expect(await verifyOn(a, derived.token)).toEqual({ valid: false, reason: 'EXPIRED' })

    const other = await newAccount(a.operator, 'derived suspended')
    const key = await issue(other.admin, { environment: 'live' })
    const itsToken = await exchange(other.admin.as(key.token), { audience: 'x' })
    expect(await verifyOn(a, itsToken.token)).toMatchObject({ valid: true })
    await a.operator.mutation('account.setStatus', { accountId: other.accountId, status: 'suspended' })
    expect(await verifyOn(a, itsToken.token)).toEqual({ valid: false, reason: 'ACCOUNT_SUSPENDED' })
    await within(1_000, async () => (await verifyOn(b, itsToken.token)).valid === false)
  })

  it("is rejected at once when its parent is narrowed below the token's scopes (the change event token.update sends)", async () => {
    const parent = await parentKey(['recordings:read', 'recordings:write'])
    const wide = await exchange(parent.caller, { audience: 'x' })
    const narrow = await exchange(parent.caller, { audience: 'x', scopes: ['recordings:read'] })
    expect(await verifyOn(a, wide.token)).toMatchObject({ valid: true })
    expect(await verifyOn(b, wide.token)).toMatchObject({ valid: true })
    // What a narrowing update does: change the row and announce the key's change in one transaction.
    await changeTransaction(a.app.deps, async (trx, announce) => {
      const row = await trx
        .updateTable('access_keys')
        .set({ scopes: ['recordings:read'] })
        .where('id', '=', parent.id)
        .returningAll()
        .executeTakeFirstOrThrow()
      await announce(keyChange(row))
    })
    expect(await verifyOn(a, wide.token)).toEqual({
      valid: false,
      reason: 'INSUFFICIENT_SCOPE',
      missingScopes: ['recordings:write'],
    })
    await within(1_000, async () => (await verifyOn(b, wide.token)).valid === false)
    expect(await verifyOn(a, narrow.token)).toMatchObject({ valid: true, scopes: ['recordings:read'] })
  })

  it('is refused at once when token.update narrows its parent, and on the other replica within the bound', async () => {
    const parent = await parentKey(['recordings:read', 'recordings:write'])
    const wide = await exchange(parent.caller, { audience: 'x' })
    expect(await verifyOn(b, wide.token)).toMatchObject({ valid: true })
    const updated = await customer.admin.mutation('token.update', { id: parent.id, scopes: ['recordings:read'] })
    expect(updated.status).toBe(200)
    expect(await verifyOn(a, wide.token)).toEqual({
      valid: false,
      reason: 'INSUFFICIENT_SCOPE',
      missingScopes: ['recordings:write'],
    })
    await within(1_000, async () => (await verifyOn(b, wide.token)).valid === false)
    // Binding the parent to networks binds its tokens at once too.
    const narrow = await exchange(parent.caller, { audience: 'x', scopes: ['recordings:read'] })
    expect(await verifyOn(a, narrow.token)).toMatchObject({ valid: true })
    const bound = await customer.admin.mutation('token.update', { id: parent.id, allowedCidrs: ['10.0.0.0/8'] })
    expect(bound.status).toBe(200)
    expect(await verifyOn(a, narrow.token)).toEqual({ valid: false, reason: 'IP_NOT_ALLOWED' })
  })

  it('refuses forgeries: another signer, a changed claim, no typ, a lifetime over 15 min, a foreign key header', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    const claims = claimsOf(derived.token)
    const { kid } = decodeProtectedHeader(derived.token)
    const attacker = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    expect(await verifyOn(a, await sign(claims, { kid }, attacker.privateKey))).toEqual({
      valid: false,
      reason: 'MALFORMED',
    })
    const [head, , signature] = derived.token.split('.')
    const widened = base64url.encode(JSON.stringify({ ...claims, scope: 'tokend:verify' }))
    expect(await verifyOn(a, `${head}.${widened}.${signature}`)).toEqual({ valid: false, reason: 'MALFORMED' })

    // Signed with our own key (only someone with the database could): still held to the rules.
    const { key } = await ourKey()
    const now = Math.floor(Date.now() / 1000)
    const iss = claims.iss
    const valid = await sign({ ...claims, iat: now, exp: now + 60 }, { kid }, key)
    expect(await verifyOn(a, valid)).toMatchObject({ valid: true })
    const long = await sign({ ...claims, iat: now, exp: now + 901 }, { kid }, key)
    expect(await verifyOn(a, long)).toEqual({ valid: false, reason: 'MALFORMED' })
    const expired = await sign({ ...claims, iat: now - 120, exp: now - 60 }, { kid }, key)
    expect(await verifyOn(a, expired)).toEqual({ valid: false, reason: 'EXPIRED' })
    const otherAccount = await sign({ ...claims, acc: 'acc_other' }, { kid }, key)
    expect(await verifyOn(a, otherAccount)).toEqual({ valid: false, reason: 'MALFORMED' })
    const sessionTyped = await sign(claims, { kid, typ: 'JWT' }, key)
    expect(await verifyOn(a, sessionTyped)).toEqual({ valid: false, reason: 'MALFORMED' })
    const foreign = await sign(claims, { kid, jku: 'https://attacker.example/jwks.json' }, key)
    expect(await verifyOn(a, foreign)).toEqual({ valid: false, reason: 'MALFORMED' })
    const otherIssuer = await sign({ ...claims, iss: `${iss}.evil` }, { kid }, key)
    expect(await verifyOn(a, otherIssuer)).toEqual({ valid: false, reason: 'MALFORMED' })
    const unknownParent = await sign({ ...claims, parent: 'tok_nobody' }, { kid }, key)
    expect(await verifyOn(a, unknownParent)).toEqual({ valid: false, reason: 'REVOKED' })
  })

  it('fails closed when the parent must come from a database that is down: 503, never valid', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    // A parent this replica has not cached, with every connection of the pool refused.
    const pool = a.app.deps.pool
    const original = pool.query.bind(pool)
    ;(pool as any).query = () =>
      Promise.reject(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }))
    try {
      const reply = await a.operator.mutation('token.verify', { token: derived.token })
      expect(reply.status).toBe(503)
    } finally {
      ;(pool as any).query = original
    }
    expect(await verifyOn(a, derived.token)).toMatchObject({ valid: true })
  })

  it('is never logged nor stored, and neither is its parent key', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    await verifyOn(a, derived.token)
    await a.operator.as(derived.token).query('me')
    await a.operator.mutation('token.verify', { token: `${derived.token}x` })
    const signature = derived.token.split('.')[2] as string
    const { rows } = await sql<{ dump: string }>`
      select (select coalesce(json_agg(k), '[]') from access_keys k)::text
        || (select coalesce(json_agg(e), '[]') from audit_events e)::text as dump
    `.execute(a.app.deps.db)
    for (const text of [a.logs.join(''), b.logs.join(''), rows[0]?.dump ?? '']) {
      expect(text).not.toContain(signature)
      expect(text).not.toContain(parent.token)
    }
  })

  it("carries its parent's meta, and its parent's network binding: IP_NOT_ALLOWED from elsewhere", async () => {
    const parent = await parentKey(['recordings:read'], { allowedCidrs: ['127.0.0.0/8'], meta: { team: 'calls' } })
    const derived = await exchange(parent.caller, { audience: 'x' })
    const verify = async (clientIp?: string) => {
      const reply = await a.operator.mutation('token.verify', { token: derived.token, ...(clientIp && { clientIp }) })
      expect(reply.status).toBe(200)
      return reply.body.result.data
    }
    expect(await verify('127.0.0.9')).toMatchObject({
      valid: true,
      kind: 'derived',
      meta: { team: 'calls' },
      allowedCidrs: ['127.0.0.0/8'],
    })
    expect(await verify('10.1.2.3')).toEqual({ valid: false, reason: 'IP_NOT_ALLOWED' })
    expect(await verify()).toEqual({ valid: false, reason: 'IP_NOT_ALLOWED' })
    const unbound = await parentKey(['recordings:read'], { meta: { team: 'calls' } })
    const free = await exchange(unbound.caller, { audience: 'x' })
    expect(await verifyOn(a, free.token)).toMatchObject({ valid: true, meta: { team: 'calls' } })
  })

  it('costs one query per parent, however many verifies', async () => {
    const parent = await parentKey()
    const derived = await exchange(parent.caller, { audience: 'x' })
    await verifyOn(a, derived.token)
    const before = a.app.deps.cache.stats.loads
    for (let i = 0; i < 20; i++) expect(await verifyOn(a, derived.token)).toMatchObject({ valid: true })
    expect(a.app.deps.cache.stats.loads).toBe(before)
  })
})
