import { generateKeyPairSync, sign } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Caller, clusterUrl, type Replicas, startReplicas, startSmtp, type TestSmtp } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * GitHub's secret scanning partner endpoint (SPEC §14) against three real replica
 * processes on one database: a report signed with the configured key, sent to one
 * replica, revokes the key on all three; a forged one changes nothing anywhere.
 */
const github = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
const forger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })

let dir: string
let smtp: TestSmtp
let cluster: Replicas
let callers: Caller[]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokend-scanning-replicas-'))
  const keys = join(dir, 'github-keys.json')
  const key = github.publicKey.export({ type: 'spki', format: 'pem' })
  await writeFile(keys, JSON.stringify({ public_keys: [{ key_identifier: 'gh-1', key, is_current: true }] }))
  smtp = await startSmtp()
  cluster = await startReplicas(clusterUrl(), 3, { TOKEND_SECRET_SCANNING_KEYS_FILE: keys, SMTP_URL: smtp.url })
  callers = cluster.replicas.map((replica) => new Caller(replica.url, cluster.bootstrapKey))
}, 120_000)

afterAll(async () => {
  await cluster?.stop()
  await smtp?.close()
  await rm(dir, { recursive: true, force: true })
})

/** A key of a fresh customer account whose one admin user has `email`. */
async function issueKey(name: string, email = `${name.replace(/\W/g, '')}@customer.example`) {
  const operator = callers[0] as Caller
  const account = (await operator.mutation('account.create', { name, plan: 'paid' })).body.result.data
  const user = await operator.mutation('user.create', {
    username: `admin${Date.now().toString(36)}`,
    email,
    password: 'correct horse battery staple',
    role: 'admin',
    accountId: account.id,
  })
  expect(user.status).toBe(200)
  const reply = await operator.mutation('token.issue', { name, environment: 'live', accountId: account.id })
  return { ...(reply.body.result.data as { token: string; id: string }), email }
}

async function verifyEverywhere(token: string) {
  return Promise.all(callers.map(async (caller) => (await caller.mutation('token.verify', { token })).body.result.data))
}

function post(replica: number, body: string, privateKey = github.privateKey) {
  const signature = sign('sha256', Buffer.from(body), { key: privateKey, dsaEncoding: 'der' }).toString('base64')
  return fetch(`${cluster.replicas[replica]?.url}/secret-scanning/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'github-public-key-identifier': 'gh-1',
      'github-public-key-signature': signature,
    },
    body,
  })
}

const report = (token: string) =>
  JSON.stringify([{ token, type: 'tokend_live_key', url: 'https://github.com/o/r/blob/main/.env', source: 'content' }])

describe('secret scanning across three replicas', () => {
  it('a signed report to one replica revokes the key on every replica, and mails once', async () => {
    const key = await issueKey('leaks soon')
    // Cached as valid on every replica first: the revocation must reach each cache.
    for (const result of await verifyEverywhere(key.token)) expect(result).toMatchObject({ valid: true })
    const mails = smtp.received.length

    const reply = await post(1, report(key.token))
    const answered = performance.now()
    expect(reply.status).toBe(200)
    // The replica that answered refuses at once; the others as soon as the change event arrives (§6).
    expect((await verifyEverywhere(key.token))[1]).toEqual({ valid: false, reason: 'REVOKED' })
    const lags = await Promise.all(
      [0, 2].map(async (replica) => {
        for (;;) {
          const result = (await (callers[replica] as Caller).mutation('token.verify', { token: key.token })).body
          if (result.result?.data.valid === false) return performance.now() - answered
          if (performance.now() - answered > 2_000) throw new Error(`replica ${replica} still accepts the key`)
        }
      }),
    )
    expect(((await reply.json()) as Array<{ label: string }>)[0]?.label).toBe('true_positive')
    expect(await verifyEverywhere(key.token)).toEqual([
      { valid: false, reason: 'REVOKED' },
      { valid: false, reason: 'REVOKED' },
      { valid: false, reason: 'REVOKED' },
    ])
    process.stdout.write(
      `secret scanning: after the 200, replicas 0 and 2 refused the key within ${lags.map((ms) => Math.round(ms)).join(' / ')} ms\n`,
    )
    // The same over REST, on every replica.
    for (const replica of cluster.replicas) {
      const rest = await fetch(`${replica.url}/api/v1/tokens/verify`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cluster.bootstrapKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token: key.token }),
      })
      expect(await rest.json()).toEqual({ valid: false, reason: 'REVOKED' })
    }
    // The account's admin hears of it once, from the replica that revoked it.
    await expect.poll(() => smtp.received.length).toBe(mails + 1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(smtp.received.slice(mails).map((mail) => mail.to)).toEqual([[key.email]])
    expect(smtp.received.at(-1)?.body).toContain(key.id)
  })

  it('a forged signature, sent to every replica, changes nothing anywhere', async () => {
    const key = await issueKey('stays valid')
    for (const replica of [0, 1, 2]) {
      const reply = await post(replica, report(key.token), forger.privateKey)
      expect(reply.status).toBe(401)
      expect(reply.headers.get('content-type')).toBe('application/problem+json')
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    for (const result of await verifyEverywhere(key.token))
      expect(result).toMatchObject({ valid: true, tokenId: key.id })
    const audit = await (callers[2] as Caller).query('audit.list', { targetId: key.id })
    expect(audit.body.result.data.items.map((event: { action: string }) => event.action)).toEqual(['token.issue'])
  })
})
