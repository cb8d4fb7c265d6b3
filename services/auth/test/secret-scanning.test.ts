import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKey } from '@tokend/keys'
import { startSmtp, type TestSmtp } from '@tokend/testing'
import fc from 'fast-check'
import { sql } from 'kysely'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PartnerKeys } from '../src/tokens/secret-scanning.ts'
import { createUser, issue, newAccount, startTestApp, type TestApp } from './harness.ts'

/**
 * GitHub's secret scanning partner endpoint (SPEC §14), with a key pair of the test's
 * own standing in for GitHub's, a real SMTP server for the admins' mail, and a real
 * tokend on a fresh database.
 */
const PATH = '/secret-scanning/github'

function keyPair() {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
}

const github = keyPair()
/** A key pair nobody configured: what a forger signs with. */
const forger = keyPair()

function keyList(keys: Array<[identifier: string, key: KeyObject]>) {
  return JSON.stringify({
    public_keys: keys.map(([key_identifier, key], index) => ({
      key_identifier,
      key: key.export({ type: 'spki', format: 'pem' }),
      is_current: index === 0,
    })),
  })
}

const signature = (body: string, key: KeyObject = github.privateKey) =>
  sign('sha256', Buffer.from(body), { key, dsaEncoding: 'der' }).toString('base64')

let dir: string
let t: TestApp
let smtp: TestSmtp

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokend-scanning-'))
  await writeFile(join(dir, 'keys.json'), keyList([['github-1', github.publicKey]]))
  smtp = await startSmtp()
  t = await startTestApp({ TOKEND_SECRET_SCANNING_KEYS_FILE: join(dir, 'keys.json'), SMTP_URL: smtp.url })
})

afterAll(async () => {
  await t?.stop()
  await smtp?.close()
  await rm(dir, { recursive: true, force: true })
})

interface Report {
  body: string
  identifier?: string | null
  signature?: string | null
  url?: string
}

async function report(options: Report) {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const identifier = options.identifier === undefined ? 'github-1' : options.identifier
  const sig = options.signature === undefined ? signature(options.body) : options.signature
  if (identifier !== null) headers['github-public-key-identifier'] = identifier
  if (sig !== null) headers['github-public-key-signature'] = sig
  const res = await fetch(`${options.url ?? t.url}${PATH}`, { method: 'POST', headers, body: options.body })
  const text = await res.text()
  return { status: res.status, contentType: res.headers.get('content-type'), body: JSON.parse(text), text }
}

const entry = (token: string) => ({
  token,
  type: 'tokend_access_key',
  url: `https://github.com/someone/repo/blob/main/${token.slice(0, 12)}.env`,
  source: 'content',
})

async function verify(token: string) {
  return (await t.operator.mutation('token.verify', { token })).body.result.data
}

async function revokeEvents(): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from audit_events where action = 'token.revoke'
  `.execute(t.app.deps.db)
  return rows[0]?.n ?? 0
}

describe('POST /secret-scanning/github', () => {
  it('revokes the valid keys of a signed report, labels every token, audits and mails the admins', async () => {
    const customer = await newAccount(t.operator, 'leaky')
    const admin = await createUser(customer.admin, { role: 'admin' })
    const leaked = await issue(customer.admin, { name: 'ci deploy', environment: 'live' })
    const earlier = await issue(customer.admin, { name: 'old one', environment: 'live' })
    await customer.admin.mutation('token.revoke', { id: earlier.id })
    const unknown = generateKey('tk', 'live')
    const lookalike = 'tk_live_notarealkeybecauseitschecksumiswrong1234567'
    const body = JSON.stringify([entry(leaked.token), entry(earlier.token), entry(unknown), entry(lookalike)])
    const mailsBefore = smtp.received.length

    const reply = await report({ body })

    expect(reply.status, reply.text).toBe(200)
    expect(reply.contentType).toMatch(/^application\/json/)
    const hash = (token: string) => createHash('sha256').update(token).digest('hex')
    expect(reply.body).toEqual([
      { token_hash: hash(leaked.token), token_type: 'tokend_access_key', label: 'true_positive' },
      { token_hash: hash(earlier.token), token_type: 'tokend_access_key', label: 'true_positive' },
      { token_hash: hash(unknown), token_type: 'tokend_access_key', label: 'false_positive' },
      { token_hash: hash(lookalike), token_type: 'tokend_access_key', label: 'false_positive' },
    ])
    for (const token of [leaked.token, earlier.token, unknown]) expect(reply.text).not.toContain(token)
    expect(await verify(leaked.token)).toEqual({ valid: false, reason: 'REVOKED' })

    const audit = await t.operator.query('audit.list', { targetId: leaked.id })
    expect(audit.body.result.data.items[0]).toMatchObject({
      action: 'token.revoke',
      actorType: 'partner',
      actorId: 'github_secret_scanning',
      data: { reason: 'leaked', reporter: 'github_secret_scanning', url: entry(leaked.token).url },
    })

    await expect.poll(() => smtp.received.length).toBe(mailsBefore + 1)
    const mail = smtp.received.at(-1)
    expect(mail?.to).toContain(`${admin.username}@example.com`)
    expect(mail?.body).toContain(leaked.id)
    expect(mail?.body).toContain(entry(leaked.token).url)
    expect(mail?.body).not.toContain(earlier.id) // already revoked: nothing new to tell
    expect(mail?.body).not.toContain(leaked.token)

    // The same report again (GitHub retries): the same labels, nothing revoked twice.
    const events = await revokeEvents()
    const again = await report({ body })
    expect(again.body.map((row: { label: string }) => row.label)).toEqual([
      'true_positive',
      'true_positive',
      'false_positive',
      'false_positive',
    ])
    expect(await revokeEvents()).toBe(events)
  })

  it('refuses unsigned and badly signed reports with 401 and revokes nothing', async () => {
    const key = await issue(t.operator, { name: 'must survive' })
    const body = JSON.stringify([entry(key.token)])
    const events = await revokeEvents()
    const other = JSON.stringify([entry(generateKey('tk', 'test'))])
    const refused: Report[] = [
      { body, signature: null }, // unsigned
      { body, identifier: null }, // no key named
      { body, identifier: 'github-9' }, // a key nobody configured
      { body, signature: signature(body, forger.privateKey) }, // forged: another key under GitHub's identifier
      { body, signature: signature(other) }, // GitHub's signature, of another body
      { body, signature: signature(`${body} `) }, // one byte more than what was signed
      { body, signature: 'not base64 at all!' },
      { body, signature: Buffer.from('x'.repeat(70)).toString('base64') }, // base64, but no DER signature
      { body, signature: '' },
    ]
    for (const attempt of refused) {
      const reply = await report(attempt)
      expect(reply.status, JSON.stringify(attempt.identifier)).toBe(401)
      expect(reply.contentType).toBe('application/problem+json')
      expect(reply.body).toMatchObject({ status: 401, reason: 'invalid_token', instance: PATH })
    }
    expect(await verify(key.token)).toMatchObject({ valid: true, tokenId: key.id })
    expect(await revokeEvents()).toBe(events)
  })

  it('answers a signed report it cannot read with 4xx and revokes nothing', async () => {
    const key = await issue(t.operator, { name: 'also survives' })
    const events = await revokeEvents()
    const bodies = [
      '{"token": ',
      JSON.stringify({ token: key.token }), // not an array
      JSON.stringify([]),
      JSON.stringify([{ token: key.token }]), // no type
      JSON.stringify([{ ...entry(key.token), token: 42 }]),
      JSON.stringify([{ ...entry(key.token), url: 'https://x/\u0000' }]), // Postgres cannot store NUL
      JSON.stringify([{ ...entry(key.token), url: 'x'.repeat(5000) }]),
      JSON.stringify(Array.from({ length: 1001 }, () => entry(key.token))),
    ]
    for (const body of bodies) {
      const reply = await report({ body })
      expect(reply.status, body.slice(0, 60)).toBe(400)
      expect(reply.body.reason).toBe('invalid_input')
    }
    const huge = JSON.stringify([{ ...entry(key.token), source: 'x'.repeat(1_100_000) }])
    expect((await report({ body: huge })).status).toBe(413)
    expect(await verify(key.token)).toMatchObject({ valid: true })
    expect(await revokeEvents()).toBe(events)
  })

  it('answers any body and headers with a clean 4xx (signed or not), never a 500', async () => {
    const events = await revokeEvents()
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json().map((json) => ({ body: json, signed: true })),
          fc
            .uint8Array({ maxLength: 64 })
            .map((bytes) => ({ body: Buffer.from(bytes).toString('latin1'), signed: false })),
        ),
        fc.option(fc.string({ maxLength: 40 }), { nil: null }),
        async ({ body, signed }, header) => {
          const reply = await fetch(`${t.url}${PATH}`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'github-public-key-identifier': signed ? 'github-1' : (header ?? 'github-1'),
              ...(signed
                ? { 'github-public-key-signature': signature(body) }
                : header
                  ? { 'github-public-key-signature': header.replace(/[^\x20-\x7e]/g, '') }
                  : {}),
            },
            body,
          })
          expect(signed ? [200, 400] : [401], body.slice(0, 40)).toContain(reply.status)
          await reply.arrayBuffer()
        },
      ),
      { numRuns: 60, seed: 16 },
    )
    expect(await revokeEvents()).toBe(events)
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  })

  it('does not exist where no keys are configured', async () => {
    const plain = await startTestApp()
    try {
      const body = JSON.stringify([entry(generateKey('tk', 'live'))])
      expect((await report({ body, url: plain.url })).status).toBe(404)
    } finally {
      await plain.stop()
    }
  })

  it('will not start with a key file that holds no usable key', async () => {
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ public_keys: [{ key_identifier: 'x', key: 'not a pem' }] }))
    await expect(startTestApp({ TOKEND_SECRET_SCANNING_KEYS_FILE: bad })).rejects.toThrow(
      /TOKEND_SECRET_SCANNING_KEYS_FILE/,
    )
    await expect(startTestApp({ TOKEND_SECRET_SCANNING_KEYS_FILE: join(dir, 'missing.json') })).rejects.toThrow(
      /TOKEND_SECRET_SCANNING_KEYS_FILE/,
    )
  })
})

describe('keys from TOKEND_SECRET_SCANNING_KEYS_URL', () => {
  let server: Server
  let url: string
  let served: string
  let status = 200
  let fetches = 0

  beforeAll(async () => {
    served = keyList([['github-1', github.publicKey]])
    server = createServer((_req, res) => {
      fetches++
      res.writeHead(status, { 'content-type': 'application/json' }).end(served)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/meta/public_keys/secret_scanning`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('are fetched once and cached; an unknown identifier refetches at most once a minute; rotation is picked up', async () => {
    let now = 1_000_000
    const keys = new PartnerKeys({ url, logger: pino({ level: 'silent' }) }, () => now)
    fetches = 0
    expect(await keys.get('github-1')).toBeDefined()
    expect(await keys.get('github-1')).toBeDefined()
    expect(fetches).toBe(1)
    // Unsigned callers naming made-up keys cannot make tokend hammer the source.
    expect(await keys.get('made-up')).toBeUndefined()
    expect(fetches).toBe(1) // fetched a moment ago
    now += 61_000
    for (let i = 0; i < 5; i++) expect(await keys.get(`made-up-${i}`)).toBeUndefined()
    expect(fetches).toBe(2)
    // GitHub rotates: the new key is found on the next refetch.
    const next = keyPair()
    served = keyList([
      ['github-2', next.publicKey],
      ['github-1', github.publicKey],
    ])
    now += 61_000
    expect(await keys.get('github-2')).toBeDefined()
    expect(fetches).toBe(3)
    // The source down: the list fetched before still serves.
    status = 500
    now += 2 * 3_600_000
    expect(await keys.get('github-1')).toBeDefined()
    status = 200
  })

  it('a tokend whose source is down answers 503 and revokes nothing', async () => {
    status = 503
    const down = await startTestApp({ TOKEND_SECRET_SCANNING_KEYS_URL: url })
    try {
      const key = await issue(down.operator, { name: 'kept' })
      const body = JSON.stringify([entry(key.token)])
      const reply = await report({ body, url: down.url })
      expect(reply.status).toBe(503)
      expect(reply.body.reason).toBe('unavailable')
      status = 200
      // Back up: the same signed report now goes through.
      const retried = await report({ body, url: down.url })
      expect(retried.body[0].label).toBe('true_positive')
      const verified = await down.operator.mutation('token.verify', { token: key.token })
      expect(verified.body.result.data).toEqual({ valid: false, reason: 'REVOKED' })
    } finally {
      status = 200
      await down.stop()
    }
  })
})
