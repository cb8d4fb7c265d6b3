import { createTokendClient, type TokendClient } from '@tokend/client'
import { generateKey } from '@tokend/keys'
import {
  freshDatabase,
  query,
  type RunningTokend,
  type ServiceProcess,
  startTokend,
  startVoiceApiProcess,
} from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * voice-api and tokend as real processes, each on its own fresh database: what a
 * sibling service gets from one `requireAuth` per route.
 */
let tokend: RunningTokend
let admin: TokendClient
let voiceDb: { url: string; drop(): Promise<void> }
let serviceKey: string
const services: ServiceProcess[] = []
let voice: VoiceApi
/** Keys of two customer accounts, A and B. */
const keys: Record<string, string> = {}

interface Reply {
  status: number
  headers: Headers
  text: string
  body: any
}

class VoiceApi {
  constructor(readonly process: ServiceProcess) {}

  async send(method: string, path: string, key?: string, body?: unknown, raw?: string): Promise<Reply> {
    const headers: Record<string, string> = {}
    if (key) headers.authorization = `Bearer ${key}`
    if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(this.process.url + path, {
      method,
      headers,
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    })
    const text = await response.text()
    return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : undefined }
  }

  get = (path: string, key?: string) => this.send('GET', path, key)

  /** Waits until the client cache stops answering (its change stream is gone). */
  async cacheOff(timeoutMs = 5_000): Promise<void> {
    const started = Date.now()
    while ((await this.get('/readyz')).body.tokendCache !== false) {
      if (Date.now() - started > timeoutMs) throw new Error('voice-api kept its cache on')
      await sleep(5)
    }
  }

  /** Waits until the client cache answers (its change stream said `ready`). */
  async cacheReady(timeoutMs = 10_000): Promise<void> {
    const started = Date.now()
    while ((await this.get('/readyz')).body.tokendCache !== true) {
      if (Date.now() - started > timeoutMs) throw new Error('voice-api cache never became ready')
      await sleep(20)
    }
  }
}

async function startVoiceApi(env: Record<string, string> = {}): Promise<VoiceApi> {
  const process = await startVoiceApiProcess({
    TOKEND_URL: tokend.url,
    TOKEND_SERVICE_KEY: serviceKey,
    DATABASE_URL: voiceDb.url,
    PORT: '0',
    ...env,
  })
  services.push(process)
  return new VoiceApi(process)
}

async function issue(input: Partial<Parameters<TokendClient['trpc']['token']['issue']['mutate']>[0]>) {
  return admin.trpc.token.issue.mutate({ name: 'user', environment: 'test', ...input })
}

beforeAll(async () => {
  tokend = await startTokend()
  voiceDb = await freshDatabase()
  admin = createTokendClient({ url: tokend.url, serviceKey: tokend.bootstrapKey })
  serviceKey = (await issue({ name: 'voice-api', environment: 'live', scopes: ['tokend:verify'] })).token
  voice = await startVoiceApi()

  const both = ['recordings:read', 'recordings:write']
  const a = await admin.trpc.account.create.mutate({ name: 'A', plan: 'paid' })
  const b = await admin.trpc.account.create.mutate({ name: 'B', plan: 'paid' })
  keys.aLive = (await issue({ accountId: a.id, environment: 'live', scopes: both })).token
  keys.aTest = (await issue({ accountId: a.id, environment: 'test', scopes: both })).token
  keys.aReadOnly = (await issue({ accountId: a.id, environment: 'live', scopes: ['recordings:read'] })).token
  keys.aNoScopes = (await issue({ accountId: a.id, environment: 'live', scopes: [] })).token
  keys.bLive = (await issue({ accountId: b.id, environment: 'live', scopes: both })).token
})

afterAll(async () => {
  for (const service of services) await service.stop()
  admin?.close()
  await tokend?.stop()
  await voiceDb?.drop()
})

describe('credentials', () => {
  it('takes a key in the Authorization header and in ?accesskey=, and refuses ?token=', async () => {
    const header = await voice.get('/v1/me', keys.aLive)
    expect(header.status).toBe(200)
    expect(header.body).toMatchObject({ kind: 'access_key', environment: 'live', scopes: expect.any(Array) })

    const query = await voice.get(`/v1/me?accesskey=${keys.aLive}`)
    expect(query.status).toBe(200)
    expect(query.body).toEqual(header.body)

    const wrong = await voice.get(`/v1/me?token=${keys.aLive}`)
    expect(wrong.status).toBe(401)
    expect(wrong.body.error.code).toBe('wrong_credential_parameter')
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer realm="voice-api", error="invalid_token"/)
    expect(wrong.text).not.toContain(keys.aLive)
  })

  it('answers 401 with WWW-Authenticate without a credential', async () => {
    for (const path of ['/v1/me', '/v1/recordings', '/v1/recordings/rec_x']) {
      const reply = await voice.get(path)
      expect(reply.status).toBe(401)
      expect(reply.body).toEqual({ error: { code: 'missing_credential', message: expect.any(String) } })
      expect(reply.headers.get('www-authenticate')).toBe('Bearer realm="voice-api"')
    }
    const post = await voice.send('POST', '/v1/recordings', undefined, { title: 'x' })
    expect(post.status).toBe(401)
  })

  it('rejects malformed keys without a call to tokend', async () => {
    const good = keys.aLive as string
    const lookalike = `${good.slice(0, -1)}${good.endsWith('0') ? '1' : '0'}`
    await sleep(200) // earlier requests' log lines may still be on their way
    const before = tokend.verifyRequests()
    for (const bad of [lookalike, generateKey('zz', 'live'), 'tk_live_nope']) {
      expect((await voice.get('/v1/me', bad)).body.error.code).toBe('malformed_credential')
      expect((await voice.get(`/v1/me?accesskey=${bad}`)).body.error.code).toBe('malformed_credential')
    }
    await sleep(200)
    expect(tokend.verifyRequests()).toBe(before)
    // The count does move for a real verify, so the zero above means something.
    await voice.get('/v1/me', good)
    await until(() => tokend.verifyRequests() > before)
    expect(tokend.verifyRequests()).toBe(before + 1)
  })
})

describe('recordings', () => {
  it('creates, lists, reads and deletes', async () => {
    const created = await voice.send('POST', '/v1/recordings', keys.aLive, { title: '  standup  ' })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^rec_/), title: 'standup', environment: 'live' })
    const id = created.body.id

    expect((await voice.get('/v1/recordings', keys.aLive)).body.items.map((r: any) => r.id)).toContain(id)
    expect((await voice.get(`/v1/recordings/${id}`, keys.aReadOnly)).body).toEqual(created.body)
    expect((await voice.send('DELETE', `/v1/recordings/${id}`, keys.aLive)).status).toBe(204)
    expect((await voice.get(`/v1/recordings/${id}`, keys.aLive)).status).toBe(404)
    expect((await voice.send('DELETE', `/v1/recordings/${id}`, keys.aLive)).status).toBe(404)
  })

  it('pages through a list', async () => {
    const key = (await issue({ environment: 'test', scopes: ['recordings:read', 'recordings:write'] })).token
    for (const title of ['one', 'two', 'three']) await voice.send('POST', '/v1/recordings', key, { title })
    const first = await voice.get('/v1/recordings?limit=2', key)
    expect(first.body.items.map((r: any) => r.title)).toEqual(['three', 'two'])
    const second = await voice.get(`/v1/recordings?limit=2&cursor=${first.body.nextCursor}`, key)
    expect(second.body).toMatchObject({ items: [{ title: 'one' }], nextCursor: null })
  })

  it('keeps test and live data apart, both ways', async () => {
    const live = (await voice.send('POST', '/v1/recordings', keys.aLive, { title: 'live call' })).body
    const test = (await voice.send('POST', '/v1/recordings', keys.aTest, { title: 'test call' })).body
    const liveIds = (await voice.get('/v1/recordings', keys.aLive)).body.items.map((r: any) => r.id)
    const testIds = (await voice.get('/v1/recordings', keys.aTest)).body.items.map((r: any) => r.id)
    expect(liveIds).toContain(live.id)
    expect(liveIds).not.toContain(test.id)
    expect(testIds).toContain(test.id)
    expect(testIds).not.toContain(live.id)

    // Same account, other environment: it does not exist there.
    expect((await voice.get(`/v1/recordings/${live.id}`, keys.aTest)).status).toBe(404)
    expect((await voice.get(`/v1/recordings/${test.id}`, keys.aLive)).status).toBe(404)
    expect((await voice.send('DELETE', `/v1/recordings/${test.id}`, keys.aLive)).status).toBe(404)
    expect((await voice.get(`/v1/recordings/${test.id}`, keys.aTest)).status).toBe(200)
  })

  it("answers 403 for another account's recording and leaves it alone", async () => {
    const mine = (await voice.send('POST', '/v1/recordings', keys.aLive, { title: 'private' })).body
    const read = await voice.get(`/v1/recordings/${mine.id}`, keys.bLive)
    expect(read.status).toBe(403)
    expect(read.body.error.code).toBe('forbidden')
    expect((await voice.send('DELETE', `/v1/recordings/${mine.id}`, keys.bLive)).status).toBe(403)
    expect((await voice.get(`/v1/recordings/${mine.id}`, keys.aLive)).status).toBe(200)
    const theirs = (await voice.get('/v1/recordings', keys.bLive)).body.items.map((r: any) => r.id)
    expect(theirs).not.toContain(mine.id)
  })

  it('answers 403 insufficient_scope for a missing scope', async () => {
    const post = await voice.send('POST', '/v1/recordings', keys.aReadOnly, { title: 'nope' })
    expect(post.status).toBe(403)
    expect(post.body.error.code).toBe('insufficient_scope')
    expect(post.body.error.message).toContain('recordings:write')
    const list = await voice.get('/v1/recordings', keys.aNoScopes)
    expect(list.status).toBe(403)
    expect((await voice.get('/v1/me', keys.aNoScopes)).status).toBe(200)
    const id = (await voice.send('POST', '/v1/recordings', keys.aLive, { title: 'x' })).body.id
    expect((await voice.send('DELETE', `/v1/recordings/${id}`, keys.aReadOnly)).status).toBe(403)
  })

  it('answers 400 invalid_input for bad input, never 500', async () => {
    const bad: [string, string, unknown, string?][] = [
      ['POST', '/v1/recordings', {}],
      ['POST', '/v1/recordings', { title: '' }],
      ['POST', '/v1/recordings', { title: '   ' }],
      ['POST', '/v1/recordings', { title: 5 }],
      ['POST', '/v1/recordings', { title: 'x'.repeat(201) }],
      ['POST', '/v1/recordings', { title: 'x', extra: true }],
      ['POST', '/v1/recordings', [1, 2]],
      ['POST', '/v1/recordings', undefined, '{"title":'],
      ['POST', '/v1/recordings', undefined, 'null'],
      ['GET', '/v1/recordings?limit=abc', undefined],
      ['GET', '/v1/recordings?limit=0', undefined],
      ['GET', '/v1/recordings?limit=1&limit=2', undefined],
      ['GET', `/v1/recordings?cursor=${'x'.repeat(100)}`, undefined],
      // Postgres cannot store NUL: refused before the database, never a 500.
      ['POST', '/v1/recordings', { title: 'a\u0000b' }],
      ['GET', '/v1/recordings?cursor=a%00b', undefined],
    ]
    for (const [method, path, body, raw] of bad) {
      const reply = await voice.send(method, path, keys.aLive, body, raw)
      expect({ method, path, body, status: reply.status, code: reply.body?.error?.code }).toEqual({
        method,
        path,
        body,
        status: 400,
        code: 'invalid_input',
      })
    }
    const huge = await voice.send('POST', '/v1/recordings', keys.aLive, { title: 'x'.repeat(100_000) })
    expect(huge.status).toBe(413)
    expect((await voice.get(`/v1/recordings/${'x'.repeat(5000)}`, keys.aLive)).status).toBe(404)
    expect((await voice.get('/v1/recordings/rec_%00', keys.aLive)).status).toBe(404)
    expect((await voice.send('DELETE', '/v1/recordings/a%00b', keys.aLive)).status).toBe(404)
    for (const odd of ['/v1/recordings/%E0%A4%A', '//v1/me?accesskey=%', '/v1/me?accesskey=%E0%A4%A&x[y]=1']) {
      const reply = await voice.send('GET', odd, keys.aLive)
      expect({ odd, status: reply.status < 500 }).toEqual({ odd, status: true })
    }
  })

  it('never logs a key or a query string', async () => {
    await voice.get(`/v1/me?accesskey=${keys.aTest}`)
    await sleep(100)
    const log = voice.process.output()
    for (const key of [...Object.values(keys), serviceKey]) expect(log).not.toContain(key.slice(12))
    expect(log).not.toContain('accesskey=')
    expect(log).toContain('"path":"/v1/me"')
  })
})

describe('with the client cache on', () => {
  let cached: VoiceApi
  beforeAll(async () => {
    cached = await startVoiceApi({ TOKEND_CACHE: 'on' })
    await cached.cacheReady()
  })

  /** A fresh key, verified once so voice-api holds it in its cache. */
  async function cachedKey() {
    await cached.cacheReady() // an earlier test may have cut the stream
    const key = await issue({ environment: 'live', scopes: ['recordings:read'] })
    expect((await cached.get('/v1/recordings', key.token)).status).toBe(200)
    await sleep(200)
    const before = tokend.verifyRequests()
    expect((await cached.get('/v1/recordings', key.token)).status).toBe(200)
    await sleep(200)
    expect(tokend.verifyRequests()).toBe(before) // answered from the cache
    return key
  }

  it('rejects a key revoked through tokend within a second', async () => {
    const key = await cachedKey()
    await admin.trpc.token.revoke.mutate({ id: key.id })
    const started = performance.now()
    let reply = await cached.get('/v1/recordings', key.token)
    while (reply.status === 200 && performance.now() - started < 5_000)
      reply = await cached.get('/v1/recordings', key.token)
    expect(performance.now() - started).toBeLessThan(1_000)
    expect(reply.body.error.code).toBe('revoked_credential')
  })

  it('never accepts a key revoked while tokend’s change channel is cut', async () => {
    const key = await cachedKey()
    await query(
      tokend.databaseUrl,
      `select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'tokend-listener' and datname = current_database()`,
    )
    await admin.trpc.token.revoke.mutate({ id: key.id })
    const statuses = new Set<number>()
    const until = Date.now() + 1_500
    while (Date.now() < until) statuses.add((await cached.get('/v1/recordings', key.token)).status)
    expect([...statuses].every((status) => status === 401 || status === 503)).toBe(true)
    expect((await cached.get('/v1/recordings', key.token)).body.error.code).toBe('revoked_credential')
  })

  it('forgets its cache while tokend is down; a key revoked meanwhile stays rejected after', async () => {
    const key = await cachedKey()
    // A second replica on the same database stays up, to take the revocation during the cut.
    const replica = await startTokend({}, { url: tokend.databaseUrl, bootstrapKey: tokend.bootstrapKey })
    const other = createTokendClient({ url: replica.url, serviceKey: tokend.bootstrapKey })
    try {
      await tokend.halt()
      // The stream's socket closes with the process; voice-api sees it and stops trusting its cache.
      await cached.cacheOff()
      const down = await cached.get('/v1/recordings', key.token)
      expect(down.status).toBe(503)
      expect(down.body.error.code).toBe('auth_unavailable')

      await other.trpc.token.revoke.mutate({ id: key.id })
      expect((await cached.get('/v1/recordings', key.token)).status).toBe(503)

      await tokend.resume()
      await cached.cacheReady()
      const after = await cached.get('/v1/recordings', key.token)
      expect(after.status).toBe(401)
      expect(after.body.error.code).toBe('revoked_credential')
    } finally {
      other.close()
      await replica.halt()
    }
  })
})

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time')
    await sleep(10)
  }
}
