import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type RunningTokend, startTokend } from '@tokend/testing'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokendClient, type DenialReason, type TokendClient, type VerifyResult } from '../src/index.ts'

/**
 * Keys bound to networks (SPEC §14) through `@tokend/client`: the middleware passes the
 * caller's address as express sees it (`req.ip`, per `trust proxy`), tokend refuses
 * other addresses as IP_NOT_ALLOWED (403 `ip_not_allowed`), and the local cache never
 * answers one address with another's answer. Against a real tokend process.
 */
let tokend: RunningTokend
let admin: TokendClient
let verifier: string
const META = { tier: 'gold', limits: { calls: 10 } }
type Key = { token: string; id: string }
let keys: { bound: Key; loopback: Key; open: Key }
const servers: Array<{ close(): Promise<void> }> = []
const clients: TokendClient[] = []

/** A sibling service on loopback with one guarded route echoing `req.auth`. */
async function sibling(client: TokendClient, trustProxy: string | false): Promise<string> {
  const app = express()
  app.set('trust proxy', trustProxy)
  app.get('/calls', client.requireAuth(), (req, res) => {
    res.json({ auth: req.auth })
  })
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push({
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function service(cache = false): TokendClient {
  const client = createTokendClient({ url: tokend.url, serviceKey: verifier, cache, logger: silent })
  clients.push(client)
  return client
}

const silent = { info() {}, warn() {} }

async function get(url: string, token: string, forwardedFor?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (forwardedFor) headers['x-forwarded-for'] = forwardedFor
  const response = await fetch(`${url}/calls`, { headers })
  return { status: response.status, headers: response.headers, body: (await response.json()) as any }
}

beforeAll(async () => {
  tokend = await startTokend()
  admin = createTokendClient({ url: tokend.url, serviceKey: tokend.bootstrapKey, logger: silent })
  clients.push(admin)
  const issue = (input: Record<string, unknown>) =>
    admin.trpc.token.issue.mutate({ name: 'network test', environment: 'test', ...input })
  verifier = (await issue({ scopes: ['tokend:verify'] })).token
  keys = {
    bound: await issue({ meta: META, allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] }),
    loopback: await issue({ allowedCidrs: ['127.0.0.0/8', '::1/128'] }),
    open: await issue({}),
  }
}, 120_000)

afterAll(async () => {
  for (const client of clients) client.close()
  await Promise.all(servers.map((server) => server.close()))
  await tokend?.stop()
})

describe('requireAuth and networks', () => {
  it('behind a trusted proxy: the forwarded client inside the networks passes, with meta on req.auth', async () => {
    const url = await sibling(service(), 'loopback')
    const inside = await get(url, keys.bound.token, '10.20.30.40')
    expect(inside.status).toBe(200)
    expect(inside.body.auth).toMatchObject({ tokenId: keys.bound.id, meta: META })
    const outside = await get(url, keys.bound.token, '192.0.2.1')
    expect(outside.status).toBe(403)
    expect(outside.body.error.code).toBe('ip_not_allowed')
    expect(outside.headers.get('www-authenticate')).toMatch(/^Bearer realm="api"/)
    // Without the header the proxy itself (loopback) is the client: outside 10/8.
    expect((await get(url, keys.bound.token)).status).toBe(403)
  })

  it('without trust proxy a forged X-Forwarded-For buys nothing: the socket address counts', async () => {
    const url = await sibling(service(), false)
    expect((await get(url, keys.bound.token, '10.20.30.40')).status).toBe(403)
    expect((await get(url, keys.loopback.token, '192.0.2.1')).status).toBe(200)
    expect((await get(url, keys.open.token)).status).toBe(200)
  })

  it('with the local cache: a bound key is asked about per address, never answered from the cache', async () => {
    const client = service(true)
    expect(await client.cacheReady(10_000)).toBe(true)
    const url = await sibling(client, 'loopback')
    expect((await get(url, keys.bound.token, '10.1.1.1')).status).toBe(200)
    expect((await get(url, keys.bound.token, '192.0.2.1')).status).toBe(403)
    expect((await get(url, keys.bound.token, '10.1.1.2')).status).toBe(200)
    expect(client.stats.cacheHits).toBe(0)
    // Keys without networks are still cached.
    await get(url, keys.open.token, '192.0.2.1')
    await get(url, keys.open.token, '10.1.1.1')
    expect(client.stats.cacheHits).toBe(1)
  })

  it('with the local cache: binding a cached key to networks reaches the client through the change stream', async () => {
    const client = service(true)
    expect(await client.cacheReady(10_000)).toBe(true)
    const key = await admin.trpc.token.issue.mutate({ name: 'to bind', environment: 'test' })
    expect((await client.verify(key.token, { clientIp: '192.0.2.1' })).valid).toBe(true)
    expect((await client.verify(key.token, { clientIp: '192.0.2.1' })).valid).toBe(true)
    const hits = client.stats.cacheHits
    expect(hits).toBeGreaterThan(0)
    await admin.trpc.token.update.mutate({ id: key.id, allowedCidrs: ['10.0.0.0/8'] })
    const deadline = Date.now() + 5_000
    let result: VerifyResult = { valid: true } as VerifyResult
    while (Date.now() < deadline) {
      result = await client.verify(key.token, { clientIp: '192.0.2.1' })
      if (!result.valid) break
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const reason: DenialReason | undefined = result.valid ? undefined : result.reason
    expect(reason).toBe('IP_NOT_ALLOWED')
    expect((await client.verify(key.token, { clientIp: '10.9.9.9' })).valid).toBe(true)
  })

  it('verify() takes clientIp; a bad one is tokend refusing the request, not a pass', async () => {
    const client = service()
    expect(await client.verify(keys.bound.token, { clientIp: '2001:db8::7' })).toMatchObject({
      valid: true,
      allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
    })
    expect(await client.verify(keys.bound.token)).toEqual({ valid: false, reason: 'IP_NOT_ALLOWED' })
    await expect(client.verify(keys.bound.token, { clientIp: 'not-an-ip' })).rejects.toMatchObject({ status: 400 })
  })
})
