import { freshDatabase } from '@tokend/testing'
import {
  base64url,
  type CryptoKey,
  createLocalJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { login, newAccount, newSession, startTestApp, type TestApp } from './harness.ts'

/** Two replicas on one database, as after a restart or behind a load balancer. */
let database: Awaited<ReturnType<typeof freshDatabase>>
let a: TestApp
let b: TestApp
let customer: Awaited<ReturnType<typeof newAccount>>
let person: Awaited<ReturnType<typeof newSession>>

beforeAll(async () => {
  database = await freshDatabase()
  a = await startTestApp({}, database)
  b = await startTestApp({}, database)
  customer = await newAccount(a.operator, 'jwt')
  person = await newSession(customer.admin, { role: 'admin' })
})

afterAll(async () => {
  await a?.stop()
  await b?.stop()
  await database?.drop()
})

async function verifyOn(app: TestApp, token: string) {
  const reply = await app.operator.as(a.bootstrapKey).mutation('token.verify', { token })
  expect(reply.status).toBe(200)
  return reply.body.result.data
}

/** The claims of a real session token, to forge variants of. */
function claimsOf(token: string): JWTPayload {
  return JSON.parse(new TextDecoder().decode(base64url.decode(token.split('.')[1] as string)))
}

/** The current signing key, read from Postgres as only an attacker with database access could. */
async function ourKey(): Promise<{ kid: string; key: CryptoKey }> {
  const row = await a.app.deps.db
    .selectFrom('signing_keys')
    .selectAll()
    .where('retired_at', 'is', null)
    .orderBy('id', 'desc')
    .executeTakeFirstOrThrow()
  return { kid: row.id, key: (await importJWK(row.private_jwk, 'EdDSA')) as CryptoKey }
}

function sign(payload: JWTPayload, header: Record<string, unknown>, key: CryptoKey | Uint8Array) {
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', ...header } as never).sign(key)
}

async function expectRejected(token: string, reason = 'MALFORMED') {
  for (const app of [a, b]) {
    expect(await verifyOn(app, token)).toEqual({ valid: false, reason })
    const me = await app.operator.as(token).query('me')
    expect(me.status).toBe(401)
  }
}

describe('JWT attacks', () => {
  it('accepts the genuine token on both replicas (the control)', async () => {
    for (const app of [a, b]) expect(await verifyOn(app, person.token)).toMatchObject({ valid: true, kind: 'session' })
  })

  it('rejects alg none', async () => {
    const header = base64url.encode(
      JSON.stringify({ alg: 'none', typ: 'JWT', kid: decodeProtectedHeader(person.token).kid }),
    )
    const payload = person.token.split('.')[1]
    await expectRejected(`${header}.${payload}.`)
    await expectRejected(`${header}.${payload}.${person.token.split('.')[2]}`)
  })

  it('rejects HS256 signed with the public key', async () => {
    const jwks = await fetch(`${a.url}/.well-known/jwks.json`).then((response) => response.json() as Promise<any>)
    const { kid } = decodeProtectedHeader(person.token)
    const publicJwk = jwks.keys.find((key: { kid: string }) => key.kid === kid)
    for (const secret of [
      new TextEncoder().encode(JSON.stringify(publicJwk)),
      base64url.decode(publicJwk.x),
      new TextEncoder().encode(publicJwk.x),
    ]) {
      const forged = await new SignJWT(claimsOf(person.token))
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid })
        .sign(secret)
      await expectRejected(forged)
    }
  })

  it("rejects a token signed with the attacker's key, whatever kid, jku or jwk it names", async () => {
    const attacker = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
    const attackerJwk = await exportJWK(attacker.publicKey)
    const { kid } = decodeProtectedHeader(person.token)
    const claims = claimsOf(person.token)
    await expectRejected(await sign(claims, { kid: 'sk_unknown' }, attacker.privateKey))
    await expectRejected(await sign(claims, { kid }, attacker.privateKey))
    await expectRejected(await sign(claims, { kid: 'attacker', jwk: attackerJwk }, attacker.privateKey))
    await expectRejected(await sign(claims, { kid, jwk: attackerJwk }, attacker.privateKey))
    await expectRejected(await sign(claims, { kid, jku: 'https://attacker.example/jwks.json' }, attacker.privateKey))
    await expectRejected(await sign(claims, {}, attacker.privateKey)) // no kid at all
  })

  it('refuses jku and jwk headers even on a token our key signed', async () => {
    const { kid, key } = await ourKey()
    const claims = claimsOf(person.token)
    expect(await verifyOn(a, await sign(claims, { kid }, key))).toMatchObject({ valid: true }) // the control
    const attacker = await exportJWK((await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })).publicKey)
    await expectRejected(await sign(claims, { kid, jku: 'https://attacker.example/jwks.json' }, key))
    await expectRejected(await sign(claims, { kid, jwk: attacker }, key))
  })

  it('rejects a wrong issuer or audience, and a missing one', async () => {
    const { kid, key } = await ourKey()
    const claims = claimsOf(person.token)
    await expectRejected(await sign({ ...claims, iss: 'someone-else' }, { kid }, key))
    await expectRejected(await sign({ ...claims, aud: 'another-service' }, { kid }, key))
    const { iss: _iss, ...noIssuer } = claims
    await expectRejected(await sign(noIssuer, { kid }, key))
    const { aud: _aud, ...noAudience } = claims
    await expectRejected(await sign(noAudience, { kid }, key))
  })

  it('answers EXPIRED for a genuine token past its expiry, MALFORMED without one', async () => {
    const { kid, key } = await ourKey()
    const claims = claimsOf(person.token)
    const now = Math.floor(Date.now() / 1000)
    await expectRejected(await sign({ ...claims, iat: now - 3_600, exp: now - 60 }, { kid }, key), 'EXPIRED')
    const { exp: _exp, ...noExpiry } = claims
    await expectRejected(await sign(noExpiry, { kid }, key))
  })

  it("holds a session to its own row's expiry, whatever later exp a re-signed token claims", async () => {
    const { kid, key } = await ourKey()
    const fresh = await login(a.operator, person.user.username)
    const claims = claimsOf(fresh.token)
    const later = Math.floor(Date.now() / 1000) + 30 * 86_400
    const stretched = await sign({ ...claims, exp: later }, { kid }, key)
    // While the session lives, the answer carries the session's expiry, not the claimed one.
    expect(await verifyOn(a, stretched)).toMatchObject({ valid: true, expiresAt: fresh.expiresAt })

    // Seven days later (the row's expiry passes), the stretched token is as dead as the original.
    const other = await login(a.operator, person.user.username)
    await a.app.deps.db
      .updateTable('sessions')
      .set({ expires_at: new Date(Date.now() - 1_000) })
      .where('id', '=', claimsOf(other.token).jti as string)
      .execute()
    const resigned = await sign({ ...claimsOf(other.token), exp: later }, { kid }, key)
    await expectRejected(resigned, 'EXPIRED')
  })

  it('rejects a tampered payload or header', async () => {
    const [header, payload, signature] = person.token.split('.') as [string, string, string]
    const other = await newAccount(a.operator, 'jwt-victim')
    for (const change of [
      { acc: other.accountId },
      { sub: 'usr_someone' },
      { kind: 'direct' },
      { exp: 4_102_444_800 },
    ]) {
      const tampered = base64url.encode(JSON.stringify({ ...claimsOf(person.token), ...change }))
      await expectRejected(`${header}.${tampered}.${signature}`)
    }
    const otherHeader = base64url.encode(JSON.stringify({ ...decodeProtectedHeader(person.token), typ: 'at+jwt' }))
    await expectRejected(`${otherHeader}.${payload}.${signature}`)
    const flipped = signature.startsWith('A') ? `B${signature.slice(1)}` : `A${signature.slice(1)}`
    await expectRejected(`${header}.${payload}.${flipped}`)
  })

  it('rejects claims that do not match the session, even under our signature', async () => {
    const { kid, key } = await ourKey()
    const claims = claimsOf(person.token)
    const other = await newAccount(a.operator, 'jwt-other')
    await expectRejected(await sign({ ...claims, acc: other.accountId }, { kid }, key))
    await expectRejected(await sign({ ...claims, sub: 'usr_01NOTTHEUSER' }, { kid }, key))
    await expectRejected(await sign({ ...claims, kind: 'admin' }, { kid }, key))
    await expectRejected(await sign({ ...claims, jti: 'ses_01NOSUCHSESSION' }, { kid }, key), 'REVOKED')
  })

  it('rejects the session of a deleted user on both replicas', async () => {
    await newSession(customer.admin, { role: 'admin' }) // another admin, so this one may go
    const doomed = await newSession(customer.admin, { role: 'admin' })
    for (const app of [a, b]) expect(await verifyOn(app, doomed.token)).toMatchObject({ valid: true })
    expect((await person.session.mutation('user.remove', { id: doomed.user.id })).status).toBe(200)
    // Gone on the replica that removed it at once, and on the other within the propagation bound.
    expect(await verifyOn(a, doomed.token)).toEqual({ valid: false, reason: 'REVOKED' })
    await until(
      () => verifyOn(b, doomed.token),
      (result) => result.reason === 'REVOKED',
    )
  })

  it('treats garbage that looks like a JWT as MALFORMED, never as an error', async () => {
    for (const token of ['eyJ.eyJ.x', 'eyJhbGciOiJFZERTQSJ9.e30.AAAA', `eyJ${'A'.repeat(3000)}.a.b`, 'eyJ!.a.b']) {
      expect(await verifyOn(a, token)).toEqual({ valid: false, reason: 'MALFORMED' })
    }
  })
})

describe('signing keys', () => {
  it('publishes the public keys, and only those, at /.well-known/jwks.json', async () => {
    const response = await fetch(`${a.url}/.well-known/jwks.json`)
    expect(response.status).toBe(200)
    const jwks = (await response.json()) as any
    expect(jwks.keys.length).toBeGreaterThanOrEqual(1)
    for (const key of jwks.keys) {
      expect(key).toEqual({
        kty: 'OKP',
        crv: 'Ed25519',
        x: expect.any(String),
        kid: expect.stringMatching(/^sk_/),
        alg: 'EdDSA',
        use: 'sig',
      })
    }
    // Anyone can check a session token offline against it.
    const { payload } = await jwtVerify(person.token, createLocalJWKSet(jwks), {
      algorithms: ['EdDSA'],
      issuer: 'tokend',
      audience: 'tokend',
    })
    expect(payload).toMatchObject({ sub: person.user.id, acc: customer.accountId, kind: 'session' })
    const stored = await sql<{ d: string }>`select private_jwk->>'d' as d from signing_keys`.execute(a.app.deps.db)
    for (const { d } of stored.rows) expect(JSON.stringify(jwks)).not.toContain(d)
  })

  it('rotates: new tokens use the new key everywhere, old ones keep verifying until retention ends', async () => {
    const before = await login(a.operator, person.user.username)
    const oldKid = decodeProtectedHeader(before.token).kid

    const rotated = await a.operator.mutation('signingKey.rotate')
    expect(rotated.status).toBe(200)
    const newKid = rotated.body.result.data.kid
    expect(newKid).not.toBe(oldKid)

    // The replica that rotated signs with the new key at once; the other once it has heard.
    expect(decodeProtectedHeader((await login(a.operator, person.user.username)).token).kid).toBe(newKid)
    await until(
      async () => decodeProtectedHeader((await login(b.operator, person.user.username)).token).kid,
      (kid) => kid === newKid,
    )
    for (const app of [a, b]) {
      expect(await verifyOn(app, before.token)).toMatchObject({ valid: true })
      const jwks = await fetch(`${app.url}/.well-known/jwks.json`).then((response) => response.json() as Promise<any>)
      expect(jwks.keys.map((key: { kid: string }) => key.kid)).toEqual(expect.arrayContaining([oldKid, newKid]))
    }
    const listed = (await a.operator.query('signingKey.list')).body.result.data
    expect(listed.find((key: { kid: string }) => key.kid === newKid)).toMatchObject({ signing: true, retiredAt: null })
    expect(listed.find((key: { kid: string }) => key.kid === oldKid)).toMatchObject({ signing: false })

    // Once every token the old key signed has expired, it verifies nothing more.
    await a.app.deps.db
      .updateTable('signing_keys')
      .set({ retired_at: new Date(Date.now() - 8 * 86_400_000) })
      .where('id', '=', oldKid as string)
      .execute()
    await a.app.deps.signingKeys.refresh()
    await b.app.deps.signingKeys.refresh()
    for (const app of [a, b]) {
      expect(await verifyOn(app, before.token)).toEqual({ valid: false, reason: 'MALFORMED' })
      const jwks = await fetch(`${app.url}/.well-known/jwks.json`).then((response) => response.json() as Promise<any>)
      expect(jwks.keys.map((key: { kid: string }) => key.kid)).not.toContain(oldKid)
    }
    // The next rotation deletes it, private half included.
    await a.operator.mutation('signingKey.rotate')
    const left = await a.app.deps.db.selectFrom('signing_keys').select('id').execute()
    expect(left.map((row) => row.id)).not.toContain(oldKid)
  })

  it('verifies tokens across a restart: the keys live in Postgres', async () => {
    const token = (await login(a.operator, person.user.username)).token
    const restarted = await startTestApp({}, database)
    try {
      expect(await verifyOn(restarted, token)).toMatchObject({ valid: true, kind: 'session' })
    } finally {
      await restarted.stop()
    }
  })

  it('lets only operator admins rotate', async () => {
    // A fresh session: the earlier ones were signed by the key whose retention ended above.
    const admin = await newSession(customer.admin, { role: 'admin' })
    expect((await customer.admin.mutation('signingKey.rotate')).status).toBe(403)
    expect((await admin.session.mutation('signingKey.rotate')).status).toBe(403)
    expect((await admin.session.query('signingKey.list')).status).toBe(403)
  })
})

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, limitMs = 5_000): Promise<T> {
  const started = Date.now()
  for (;;) {
    const value = await probe()
    if (done(value)) return value
    if (Date.now() - started > limitMs) throw new Error(`not done after ${limitMs} ms: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
