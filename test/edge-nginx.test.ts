import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Caller,
  freePort,
  freshDatabase,
  type RunningTokend,
  repoRoot,
  type ServiceProcess,
  startTokend,
  startVoiceApiProcess,
} from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDebianProgram } from './support/debian.ts'

/**
 * infra/nginx/voice-api.conf with a real nginx in front of a real voice-api, asking a
 * real tokend (auth_request → /edge/auth) about every request. Between nginx and
 * voice-api sits a pass-through that records the headers voice-api receives.
 */

let prefix: string
let tokend: RunningTokend
let operator: Caller
let voiceDb: Awaited<ReturnType<typeof freshDatabase>>
let voiceApi: ServiceProcess
let recorder: Server
let nginx: ChildProcess
let front: string
const LIMIT = 3
/** The headers of every request that reached voice-api, in order. */
const reached: IncomingHttpHeaders[] = []

/** Passes requests on to voice-api, keeping their headers. */
function startRecorder(target: URL, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    reached.push(req.headers)
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)))
}

beforeAll(async () => {
  const nginxPath = await ensureDebianProgram('nginx')
  prefix = await mkdtemp(join(tmpdir(), 'tokend-edge-nginx-'))
  tokend = await startTokend()
  operator = new Caller(tokend.url, tokend.bootstrapKey)
  const service = await operator.mutation('token.issue', {
    name: 'voice-api',
    environment: 'live',
    scopes: ['tokend:verify'],
  })
  voiceDb = await freshDatabase()
  voiceApi = await startVoiceApiProcess({
    TOKEND_URL: tokend.url,
    TOKEND_SERVICE_KEY: service.body.result.data.token,
    DATABASE_URL: voiceDb.url,
    PORT: '0',
  })
  const recorderPort = await freePort()
  recorder = await startRecorder(new URL(voiceApi.url), recorderPort)

  const port = await freePort()
  let conf = await readFile(join(repoRoot, 'infra/nginx/voice-api.conf'), 'utf8')
  const tokendHost = new URL(tokend.url).host
  for (const [from, to] of [
    ['listen 8090;', `listen 127.0.0.1:${port};`],
    ['server tokend-1:3000 ', `server ${tokendHost} `],
    ['server tokend-2:3000 ', `server ${tokendHost} `],
    ['server tokend-3:3000 ', `server ${tokendHost} `],
    ['server voice-api:3000 ', `server 127.0.0.1:${recorderPort} `],
    // The shipped limit, 6000 a minute, made small enough to reach in a test.
    ['ratelimit=voice-api:6000:60000', `ratelimit=voice-api:${LIMIT}:3600000`],
  ]) {
    const parts = conf.split(from as string)
    if (parts.length !== 2) throw new Error(`expected "${from}" once in voice-api.conf`)
    conf = parts.join(to)
  }
  const confPath = join(prefix, 'nginx.conf')
  await writeFile(confPath, conf)
  const log = openSync(join(prefix, 'access.log'), 'a')
  nginx = spawn(
    nginxPath,
    ['-p', prefix, '-c', confPath, '-e', 'stderr', '-g', `daemon off; pid ${join(prefix, 'nginx.pid')};`],
    {
      stdio: ['ignore', log, 'pipe'],
    },
  )
  closeSync(log)
  let output = ''
  nginx.stderr?.on('data', (chunk) => (output += chunk))
  front = `http://127.0.0.1:${port}`
  for (let waited = 0; ; waited += 50) {
    const up = await fetch(`${front}/healthz`).then(
      (response) => response.ok,
      () => false,
    )
    if (up) break
    if (waited > 15_000 || nginx.exitCode !== null) throw new Error(`nginx did not start:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}, 480_000) // apt-get may first have to install nginx (and wait for another install)

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((resolve) => nginx.on('exit', resolve))
    nginx.kill('SIGTERM')
    await exited
  }
  recorder?.close()
  await voiceApi?.stop()
  await tokend?.stop()
  await voiceDb?.drop()
  if (prefix) await rm(prefix, { recursive: true, force: true })
})

async function issue(input: Record<string, unknown>) {
  const reply = await operator.mutation('token.issue', { name: 'caller', environment: 'live', ...input })
  return reply.body.result.data as { token: string; id: string; accountId: string }
}

async function send(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const response = await fetch(front + path, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text.startsWith('{') ? JSON.parse(text) : text }
}

describe('nginx auth_request in front of voice-api (infra/nginx/voice-api.conf)', () => {
  it('passes a valid key on with the principal headers, replacing forged ones', async () => {
    const accountId = (await operator.mutation('account.create', { name: 'edge', plan: 'paid' })).body.result.data.id
    const key = await issue({ accountId, scopes: ['recordings:read', 'recordings:write'] })
    const forged = { 'x-tokend-account-id': 'acc_forged', 'x-tokend-scopes': 'everything' }
    const created = await send(
      'POST',
      '/v1/recordings',
      { authorization: `Bearer ${key.token}`, ...forged },
      { title: 'call' },
    )
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const headers = reached.at(-1) as IncomingHttpHeaders
    expect(headers).toMatchObject({
      'x-tokend-account-id': accountId,
      'x-tokend-key-id': key.id,
      'x-tokend-environment': 'live',
      'x-tokend-scopes': 'recordings:read,recordings:write',
      'x-tokend-kind': 'access_key',
    })
    // With ?accesskey= too, and voice-api answers from its own data.
    const listed = await send('GET', `/v1/recordings?accesskey=${key.token}`)
    expect(listed.status).toBe(200)
    expect(listed.body.items).toHaveLength(1)
  })

  it('no key: 401 with WWW-Authenticate and the JSON error, voice-api never asked', async () => {
    const before = reached.length
    const answer = await send('GET', '/v1/recordings')
    expect(answer.status).toBe(401)
    expect(answer.headers.get('www-authenticate')).toBe('Bearer realm="tokend"')
    expect(answer.body).toEqual({
      error: { code: 'missing_credential', message: expect.stringContaining('send a credential') },
    })
    expect(reached.length).toBe(before)
  })

  it('a missing scope: 403 insufficient_scope', async () => {
    const reader = await issue({ scopes: ['recordings:read'] })
    const answer = await send('POST', '/v1/recordings', { authorization: `Bearer ${reader.token}` }, { title: 'x' })
    expect(answer.status).toBe(403)
    expect(answer.headers.get('www-authenticate')).toContain('error="insufficient_scope"')
    expect(answer.headers.get('www-authenticate')).toContain('scope="recordings:write"')
    expect(answer.body).toEqual({
      error: { code: 'insufficient_scope', message: 'the credential lacks a required scope: recordings:write' },
    })
  })

  it('a revoked key: 401 at once', async () => {
    const key = await issue({ scopes: ['recordings:read'] })
    expect((await send('GET', '/v1/recordings', { authorization: `Bearer ${key.token}` })).status).toBe(200)
    expect((await operator.mutation('token.revoke', { id: key.id })).status).toBe(200)
    const answer = await send('GET', '/v1/recordings', { authorization: `Bearer ${key.token}` })
    expect(answer.status).toBe(401)
    expect(answer.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(answer.body.error.code).toBe('revoked_credential')
  })

  it('over the rate limit: 429 with Retry-After', async () => {
    // Limits count per account and route: a fresh account starts with a fresh window.
    const accountId = (await operator.mutation('account.create', { name: 'busy', plan: 'paid' })).body.result.data.id
    const key = await issue({ accountId, scopes: ['recordings:read'] })
    const read = () => send('GET', '/v1/recordings', { authorization: `Bearer ${key.token}` })
    for (let i = 0; i < LIMIT; i++) expect((await read()).status).toBe(200)
    const answer = await read()
    expect(answer.status).toBe(429)
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(answer.body).toEqual({ error: { code: 'rate_limited', message: 'too many requests; retry later' } })
  })
})
