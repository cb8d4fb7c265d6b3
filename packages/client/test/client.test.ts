import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKey } from '@tokend/keys'
import { freePort, query, type RunningTokend, startTokend } from '@tokend/testing'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createTokendClient, type TokendClient, TokendRejectedError, TokendUnavailableError } from '../src/index.ts'

let tokend: RunningTokend
let admin: TokendClient
const clients: TokendClient[] = []

/** A client as a sibling service holds it; closed after the file. */
function client(options: Partial<Parameters<typeof createTokendClient>[0]> = {}): TokendClient {
  const created = createTokendClient({ url: tokend.url, serviceKey: tokend.bootstrapKey, ...options })
  clients.push(created)
  return created
}

async function issue(input: Partial<Parameters<TokendClient['trpc']['token']['issue']['mutate']>[0]> = {}) {
  return admin.trpc.token.issue.mutate({ name: 'user key', environment: 'test', scopes: ['recordings:read'], ...input })
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  const started = performance.now()
  while (!(await condition())) {
    if (performance.now() - started > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  return performance.now() - started
}

beforeAll(async () => {
  // The file issues more keys than a minute's default allowance.
  tokend = await startTokend({ TOKEND_KEY_CREATIONS_PER_MINUTE: '1000' })
  admin = client()
})
afterAll(async () => {
  for (const each of clients) each.close()
  await tokend?.stop()
})

describe('verify', () => {
  it("answers with tokend's VerifyResult, batching concurrent calls into one request", async () => {
    const key = await issue({ scopes: ['recordings:read', 'recordings:write'] })
    const before = admin.stats.httpRequests
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => admin.verify(key.token)),
      admin.verify(key.token, { scopes: ['recordings:delete'] }),
      admin.verify(key.token, { environment: 'live' }),
    ])
    expect(admin.stats.httpRequests - before).toBe(1)
    expect(results[0]).toEqual({
      valid: true,
      kind: 'access_key',
      tokenId: key.id,
      accountId: expect.stringMatching(/^acc_/),
      environment: 'test',
      role: 'manager',
      scopes: ['recordings:read', 'recordings:write'],
      name: 'user key',
      expiresAt: null,
    })
    expect(results[20]).toEqual({ valid: false, reason: 'INSUFFICIENT_SCOPE', missingScopes: ['recordings:delete'] })
    expect(results[21]).toEqual({ valid: false, reason: 'WRONG_ENVIRONMENT' })
  })

  it('refuses malformed access keys offline, without a request to tokend', async () => {
    const key = await issue()
    const lookalike = `${key.token.slice(0, -1)}${key.token.endsWith('0') ? '1' : '0'}`
    await new Promise((resolve) => setTimeout(resolve, 200)) // earlier log lines may still be on their way
    const requestsBefore = tokend.verifyRequests()
    const sentBefore = admin.stats.networkVerifies
    for (const bad of ['', 'nope', lookalike, generateKey('zz', 'live'), `${key.token}x`, 'a'.repeat(5000)]) {
      expect(await admin.verify(bad)).toEqual({ valid: false, reason: 'MALFORMED' })
    }
    expect(admin.stats.networkVerifies).toBe(sentBefore)
    // One real verify afterwards proves the log counts requests: exactly one more.
    expect((await admin.verify(key.token)).valid).toBe(true)
    await until(() => tokend.verifyRequests() > requestsBefore)
    expect(tokend.verifyRequests()).toBe(requestsBefore + 1)
  })

  it('sends JWT-shaped credentials to tokend to judge', async () => {
    const sent = admin.stats.networkVerifies
    const result = await admin.verify('eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl')
    expect(admin.stats.networkVerifies).toBe(sent + 1)
    expect(result.valid).toBe(false) // tokend issues no JWTs yet, so it calls this one malformed
  })

  it('gives the same answers with the cache on as tokend gives without it', async () => {
    const cached = client({ cache: true })
    expect(await cached.cacheReady()).toBe(true)
    const keys = [
      await issue({ environment: 'live', scopes: ['recordings:read', 'recordings:write'] }),
      await issue({ environment: 'test', scopes: [] }),
      await issue({ environment: 'live', role: 'admin', scopes: ['recordings:read'] }),
    ]
    const requirements = [
      {},
      { scopes: ['recordings:read'] },
      { scopes: ['recordings:write', 'recordings:read', 'calls:read'] },
      { environment: 'live' as const },
      { environment: 'test' as const, scopes: ['recordings:read'] },
      { role: 'admin' as const },
      { role: 'manager' as const, environment: 'live' as const },
    ]
    for (const key of keys) {
      for (const require of requirements) {
        for (let round = 0; round < 2; round++) {
          expect(await cached.verify(key.token, require)).toEqual(await admin.verify(key.token, require))
        }
      }
    }
    expect(cached.stats.networkVerifies).toBe(keys.length)
    expect(cached.stats.cacheHits).toBe(keys.length * (requirements.length * 2 - 1))
  })
})

describe('the local cache', () => {
  it('answers only after the stream is ready, and sees a revocation within a second', async () => {
    const cached = client({ cache: { ttlMs: 60_000 } })
    const key = await issue()
    expect(await cached.cacheReady()).toBe(true)
    expect((await cached.verify(key.token)).valid).toBe(true)
    expect((await cached.verify(key.token)).valid).toBe(true)
    expect(cached.stats).toMatchObject({ networkVerifies: 1, cacheHits: 1 })

    await admin.trpc.token.revoke.mutate({ id: key.id })
    const ms = await until(async () => !(await cached.verify(key.token)).valid)
    expect(ms).toBeLessThan(1_000)
    expect(await cached.verify(key.token)).toEqual({ valid: false, reason: 'REVOKED' })
  })

  it('drops cached answers when a key is disabled or its account suspended, and back', async () => {
    const cached = client({ cache: true })
    const account = await admin.trpc.account.create.mutate({ name: 'suspendable', plan: 'paid' })
    const key = await issue({ accountId: account.id })
    const other = await issue()
    expect(await cached.cacheReady()).toBe(true)
    expect((await cached.verify(key.token)).valid).toBe(true)
    expect((await cached.verify(other.token)).valid).toBe(true)

    await admin.trpc.token.setDisabled.mutate({ id: key.id, disabled: true })
    await until(async () => (await cached.verify(key.token)).valid === false)
    expect(await cached.verify(key.token)).toEqual({ valid: false, reason: 'DISABLED' })
    await admin.trpc.token.setDisabled.mutate({ id: key.id, disabled: false })
    await until(async () => (await cached.verify(key.token)).valid)

    await admin.trpc.account.setStatus.mutate({ accountId: account.id, status: 'suspended' })
    await until(async () => (await cached.verify(key.token)).valid === false)
    expect(await cached.verify(key.token)).toEqual({ valid: false, reason: 'ACCOUNT_SUSPENDED' })
    await admin.trpc.account.setStatus.mutate({ accountId: account.id, status: 'active' })
    await until(async () => (await cached.verify(key.token)).valid)
    expect((await cached.verify(other.token)).valid).toBe(true)
  })

  it('never caches nor shares the answers of a key with usage credits: one credit per verify', async () => {
    const cached = client({ cache: true })
    expect(await cached.cacheReady()).toBe(true)
    const key = await issue({ credits: { remaining: 5 } })
    // Concurrent verifies of a cold key: one would answer them all, were answers shared.
    const first = await Promise.all(Array.from({ length: 3 }, () => cached.verify(key.token)))
    expect(first.map((result) => result.valid)).toEqual([true, true, true])
    const later = await Promise.all(Array.from({ length: 4 }, () => cached.verify(key.token)))
    expect(later.filter((result) => result.valid)).toHaveLength(2)
    expect(later.filter((result) => !result.valid && result.reason === 'USAGE_EXCEEDED')).toHaveLength(2)
    expect(await cached.verify(key.token, { cost: 0 })).toMatchObject({ valid: false, reason: 'USAGE_EXCEEDED' })
    const plain = await issue()
    await cached.verify(plain.token)
    const hits = cached.stats.cacheHits
    await cached.verify(plain.token)
    expect(cached.stats.cacheHits).toBe(hits + 1)
  })

  it('turns itself off when its own service key is revoked, and stays off', async () => {
    const service = await issue({ name: 'a sibling', environment: 'live', scopes: ['tokend:verify'] })
    const cached = client({ serviceKey: service.token, cache: true })
    const key = await issue()
    expect(await cached.cacheReady()).toBe(true)
    expect((await cached.verify(key.token)).valid).toBe(true)

    await admin.trpc.token.revoke.mutate({ id: service.id })
    await until(() => !cached.cacheActive)
    // Nothing is answered from memory any more: tokend refuses the revoked service key.
    await expect(cached.verify(key.token)).rejects.toBeInstanceOf(TokendRejectedError)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(cached.cacheActive).toBe(false)
    expect(await cached.cacheReady(200)).toBe(false)
  })

  it("keeps only its own account's answers when its service key belongs to a tenant", async () => {
    const account = await admin.trpc.account.create.mutate({ name: 'tenant', plan: 'paid' })
    const service = await issue({ accountId: account.id, environment: 'live', scopes: ['tokend:verify'] })
    const cached = client({ serviceKey: service.token, cache: true })
    const own = await issue({ accountId: account.id })
    const foreign = await issue()
    expect(await cached.cacheReady()).toBe(true)
    for (let i = 0; i < 2; i++) {
      expect((await cached.verify(own.token)).valid).toBe(true)
      expect((await cached.verify(foreign.token)).valid).toBe(true)
    }
    // The stream tells this client nothing of the other account, so those answers are asked for each time.
    expect(cached.stats).toMatchObject({ networkVerifies: 3, cacheHits: 1 })
    await admin.trpc.token.revoke.mutate({ id: foreign.id })
    expect(await cached.verify(foreign.token)).toEqual({ valid: false, reason: 'REVOKED' })
  })

  it("stops answering from memory when tokend's channel is cut, until a new stream is ready", async () => {
    const cached = client({ cache: true })
    const key = await issue()
    expect(await cached.cacheReady()).toBe(true)
    await cached.verify(key.token)

    const cut = await query(
      tokend.databaseUrl,
      `select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'tokend-listener' and datname = current_database()`,
    )
    expect(cut).toHaveLength(1)
    await until(() => !cached.cacheActive)
    const sent = cached.stats.networkVerifies
    // Whatever happens next, this answer came from tokend or a fresh stream, not the old cache.
    expect((await cached.verify(key.token)).valid).toBe(true)
    expect(await cached.cacheReady()).toBe(true)
    expect(cached.stats.networkVerifies).toBeGreaterThan(sent)
  })
})

describe('outages never pass', () => {
  let stub: Stub
  beforeAll(async () => {
    stub = await startStub()
  })
  beforeEach(() => {
    stub.requests = []
  })
  afterAll(() => stub.close())

  const key = generateKey('tk', 'live')

  it('throws TokendUnavailableError when tokend is unreachable', async () => {
    const down = client({ url: `http://127.0.0.1:${await freePort()}`, retries: 2 })
    await expect(down.verify(key)).rejects.toBeInstanceOf(TokendUnavailableError)
    expect(down.stats.networkVerifies).toBe(3)
  })

  it('times out a tokend that does not answer, retrying once', async () => {
    stub.answer = () => {} // never answers
    const slow = client({ url: stub.url, timeoutMs: 200, retries: 1 })
    const started = performance.now()
    await expect(slow.verify(key)).rejects.toBeInstanceOf(TokendUnavailableError)
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(stub.requests).toHaveLength(2)
  })

  it('retries a 5xx when verify is idempotent, and not when it counts a rate limit', async () => {
    stub.answer = (res) => trpcError(res, 503, 'unavailable')
    const flaky = client({ url: stub.url, retries: 1 })
    await expect(flaky.verify(key)).rejects.toMatchObject({ name: 'TokendUnavailableError', status: 503 })
    expect(stub.requests).toHaveLength(2)

    stub.requests.length = 0
    const limited = { name: 'recordings.create', limit: 60, windowMs: 60_000 }
    await expect(flaky.verify(key, { ratelimit: limited })).rejects.toBeInstanceOf(TokendUnavailableError)
    expect(stub.requests).toHaveLength(1)
    expect(stub.requests[0]).toEqual({ 0: { token: key, ratelimit: limited } })
  })

  it('does not retry a refusal of its own service key, and never turns it into an accept', async () => {
    stub.answer = (res) => trpcError(res, 401, 'invalid_token')
    const refused = client({ url: stub.url, retries: 3 })
    const error = await refused.verify(key).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(TokendRejectedError)
    expect(error).toMatchObject({ status: 401, reason: 'invalid_token' })
    expect(stub.requests).toHaveLength(1)
  })

  it('a stream that cannot connect leaves the cache off', async () => {
    stub.answer = (res) => trpcError(res, 503, 'unavailable')
    const cached = client({ url: stub.url, cache: true, retries: 0 })
    expect(await cached.cacheReady(300)).toBe(false)
    await expect(cached.verify(key)).rejects.toBeInstanceOf(TokendUnavailableError)
  })
})

interface Stub {
  url: string
  requests: unknown[]
  answer: (res: ServerResponse) => void
  close(): Promise<void>
}

/** Stands in for a tokend that is down, slow or refusing: only for outage cases. */
async function startStub(): Promise<Stub> {
  const stub = { requests: [] as unknown[], answer: (_res: ServerResponse) => {} }
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    if (req.method === 'POST') stub.requests.push(JSON.parse(body))
    stub.answer(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(stub, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  })
}

function trpcError(res: ServerResponse, httpStatus: number, reason: string): void {
  const code = { 401: -32001, 503: -32603 }[httpStatus] ?? -32603
  res.writeHead(httpStatus, { 'content-type': 'application/json' })
  res.end(JSON.stringify([{ error: { code, message: reason, data: { httpStatus, reason } } }]))
}
