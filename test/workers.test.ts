import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Caller,
  clusterUrl,
  createTestDatabase,
  freePort,
  repoRoot,
  type ServiceProcess,
  startService,
} from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, call, tokendClients } from '../services/auth/test/grpc-client.ts'

/**
 * TOKEND_WORKERS=2 (SPEC §11, issue 17): one tokend process tree, two workers on one
 * port, each with its own cache and change listener, sharing only Postgres.
 */
let database: { url: string; drop(): Promise<void> }
let dir: string
let tokend: ServiceProcess
let operator: Caller
let bootstrapKey: string
let grpcPort: number

beforeAll(async () => {
  database = await createTestDatabase(clusterUrl())
  dir = await mkdtemp(join(tmpdir(), 'tokend-workers-'))
  grpcPort = await freePort()
  tokend = await startService(
    process.execPath,
    ['--max-semi-space-size=64', '--conditions=tokend-source', '--import', 'tsx', 'src/main.ts'],
    {
      cwd: join(repoRoot, 'services/auth'),
      env: {
        DATABASE_URL: database.url,
        HOST: '127.0.0.1',
        PORT: String(await freePort()),
        TOKEND_GRPC_PORT: String(grpcPort),
        TOKEND_WORKERS: '2',
        TOKEND_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.key'),
        // At debug every verify request is logged with the pid of the worker that answered it.
        LOG_LEVEL: 'debug',
      },
      // The primary's line, once both workers listen.
      ready: /"workers":2,"url":"(http:\/\/[^"]+)","msg":"tokend listening"/,
      timeoutMs: 240_000,
    },
  )
  bootstrapKey = (await readFile(join(dir, 'bootstrap.key'), 'utf8')).trim()
  operator = new Caller(tokend.url, bootstrapKey)
}, 270_000)

afterAll(async () => {
  await tokend?.stop('SIGKILL')
  await database?.drop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The pids of the workers that logged `msg` (from `offset` in the output on). */
function pidsLogging(pattern: RegExp, offset = 0): Map<number, number> {
  const counts = new Map<number, number>()
  for (const line of tokend.output().slice(offset).split('\n')) {
    const pid = /"pid":(\d+)/.exec(line)?.[1]
    if (pid && pattern.test(line)) counts.set(Number(pid), (counts.get(Number(pid)) ?? 0) + 1)
  }
  return counts
}

const verifyLine = /"path":"\/trpc\/token\.verify"/

/** Verifies `token` `count` times, 30 at a time (so over many connections, and both workers). */
async function verifyMany(token: string, count: number, extra: Record<string, unknown> = {}) {
  const results: { valid: boolean; reason?: string }[] = []
  for (let done = 0; done < count; done += 30) {
    const replies = await Promise.all(
      Array.from({ length: Math.min(30, count - done) }, () => operator.mutation('token.verify', { token, ...extra })),
    )
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      results.push(reply.body.result.data)
    }
  }
  return results
}

async function issue(name: string) {
  const reply = await operator.mutation('token.issue', { name, environment: 'live' })
  expect(reply.status).toBe(200)
  return reply.body.result.data as { token: string; id: string }
}

/** A GET on a connection of its own, so successive requests may reach different workers. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${tokend.url}${path}`, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function scrape(): Promise<string> {
  const { status, body } = await get('/metrics')
  if (status !== 200) throw new Error(`/metrics: ${status} ${body}`)
  return body
}

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line ? Number(line.split(' ').at(-1)) : Number.NaN
}

describe('two workers on one port', () => {
  it('migrated and bootstrapped once, in the primary, before forking two workers', () => {
    const output = tokend.output()
    expect(output.split(bootstrapKey)).toHaveLength(2) // printed exactly once
    expect(pidsLogging(/"msg":"bootstrapped the operator account/).size).toBe(1)
    const workers = pidsLogging(/"msg":"tokend listening"/)
    expect(workers.size).toBe(3) // two workers and the primary's summary
    expect(pidsLogging(/"msg":"tokend gRPC listening"/).size).toBe(2)
  })

  it('answers /readyz and gRPC on the shared ports', async () => {
    for (let i = 0; i < 4; i++) {
      const ready = await get('/readyz')
      expect(ready).toMatchObject({ status: 200 })
      expect(JSON.parse(ready.body)).toEqual({ status: 'ok', database: 'ok', changes: 'subscribed' })
    }
    const clients = tokendClients(`127.0.0.1:${grpcPort}`)
    try {
      const answer = await call(clients.tokens.Verify, clients.tokens, { token: bootstrapKey }, bearer(bootstrapKey))
      expect(answer).toMatchObject({ valid: true })
    } finally {
      clients.close()
    }
  })

  it('sends a revocation to both workers: after it, every request on either is REVOKED', async () => {
    const key = await issue('revoked across workers')
    const warm = await verifyMany(key.token, 300)
    expect(warm.every((result) => result.valid)).toBe(true)
    // Both workers served the key, from their own caches.
    const served = pidsLogging(verifyLine)
    expect(served.size).toBe(2)
    for (const count of served.values()) expect(count).toBeGreaterThan(10)

    const revoked = await operator.mutation('token.revoke', { id: key.id })
    expect(revoked.status).toBe(200)
    // SPEC §6: the other worker hears of it through Postgres within 250 ms at most.
    await sleep(250)
    const offset = tokend.output().length
    const after = await verifyMany(key.token, 300)
    expect(after.filter((result) => result.valid)).toEqual([])
    expect(new Set(after.map((result) => result.reason))).toEqual(new Set(['REVOKED']))
    expect(pidsLogging(verifyLine, offset).size).toBe(2)
  }, 60_000)

  it('holds a rate limit across both workers', async () => {
    const key = await issue('rate limited')
    const windowMs = 600_000
    if (Date.now() % windowMs > windowMs - 10_000) await sleep(10_000)
    const ratelimit = { name: 'workers', limit: 60, windowMs }
    const results = await verifyMany(key.token, 180, { ratelimit })
    const admitted = results.filter((result) => result.valid).length
    // As across replicas (test/limits.test.ts): at least the limit, at most 10% over it.
    expect(admitted).toBeGreaterThanOrEqual(60)
    expect(admitted).toBeLessThanOrEqual(66)
    expect(results.filter((result) => !result.valid).every((result) => result.reason === 'RATE_LIMITED')).toBe(true)
  }, 60_000)

  it('serves /metrics aggregated over both workers, whichever answers the scrape', async () => {
    const key = await issue('counted')
    const before = sample(await scrape(), 'tokend_verifies_total{result="valid",kind="access_key"}')
    await verifyMany(key.token, 90)
    const scrapes = await Promise.all(Array.from({ length: 6 }, () => scrape()))
    for (const text of scrapes) {
      expect(sample(text, 'tokend_verifies_total{result="valid",kind="access_key"}')).toBe(before + 90)
      expect(sample(text, 'tokend_change_channel_up')).toBe(2)
      expect(sample(text, 'tokend_verify_duration_seconds_count')).toBeGreaterThanOrEqual(before + 90)
    }
  }, 60_000)

  it('replaces a worker that dies, and the new one knows every revocation', async () => {
    const key = await issue('after a crash')
    await operator.mutation('token.revoke', { id: key.id })
    const victim = [...pidsLogging(verifyLine).keys()][0] as number
    process.kill(victim, 'SIGKILL')
    // Workers here start from TypeScript source through tsx: slow while the whole suite runs.
    const deadline = Date.now() + 150_000
    while (!/"msg":"worker replaced"/.test(tokend.output())) {
      if (Date.now() > deadline) throw new Error(`no worker replaced:\n${tokend.output().slice(-3000)}`)
      await sleep(100)
    }
    expect(tokend.output()).toMatch(/"signal":"SIGKILL","restartInMs":\d+,"msg":"worker died; replacing it"/)
    const offset = tokend.output().length
    const results = await verifyMany(key.token, 120)
    expect(results.every((result) => result.reason === 'REVOKED')).toBe(true)
    const served = pidsLogging(verifyLine, offset)
    expect(served.size).toBe(2)
    expect(served.has(victim)).toBe(false)
  }, 180_000)

  it('drains both workers on SIGTERM and exits 0', async () => {
    const pids = [...pidsLogging(/"msg":"tokend listening","?/).keys()]
    expect(await tokend.stop('SIGTERM')).toBe(0)
    const output = tokend.output()
    expect(pidsLogging(/"signal":"SIGTERM","msg":"shutting down"/).size).toBe(2)
    expect(output).toContain('"why":"SIGTERM","msg":"shutting down"')
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
  }, 60_000)
})

describe('a worker that cannot start', () => {
  it('stops the whole service with exit 1 and its reason, rather than restarting it', async () => {
    const taken = createNetServer()
    const port = await freePort()
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve))
    try {
      const failed = startService(process.execPath, ['--conditions=tokend-source', '--import', 'tsx', 'src/main.ts'], {
        cwd: join(repoRoot, 'services/auth'),
        env: {
          DATABASE_URL: database.url,
          HOST: '127.0.0.1',
          PORT: String(port),
          TOKEND_GRPC_PORT: '0',
          TOKEND_WORKERS: '2',
          TOKEND_BOOTSTRAP_TOKEN_FILE: '',
        },
        ready: /"workers":2,"url":"(http:\/\/[^"]+)","msg":"tokend listening"/,
        timeoutMs: 240_000,
      })
      await expect(failed).rejects.toThrow(
        /exited with 1[\s\S]*tokend: failed to start: cannot listen on 127.0.0.1:\d+[\s\S]*a worker failed to start/,
      )
    } finally {
      taken.close()
    }
  }, 270_000)
})
