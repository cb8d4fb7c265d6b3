import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, freshDatabase, query, repoRoot, type ServiceProcess, startTokendProcess } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDebianProgram } from './support/debian.ts'

/**
 * compose.yaml's topology with real processes instead of containers: three tokend
 * replicas on one Postgres database, behind Debian's nginx running infra/nginx/nginx.conf.
 * The file is used as it is, except for the replica addresses and the listen port.
 */

/** compose.yaml's nginx.conf with the replicas at `upstreams` and nginx on loopback `port`. */
function renderNginxConf(conf: string, upstreams: string[], port: number): string {
  const replaceOnce = (text: string, from: string, to: string) => {
    const parts = text.split(from)
    if (parts.length !== 2) throw new Error(`expected "${from}" once in nginx.conf, found it ${parts.length - 1} times`)
    return parts.join(to)
  }
  let rendered = replaceOnce(conf, 'listen 8080;', `listen 127.0.0.1:${port};`)
  upstreams.forEach((address, i) => {
    rendered = replaceOnce(rendered, `server tokend-${i + 1}:3000 `, `server ${address} `)
  })
  return rendered
}

let nginxBinary = 'nginx'

interface Nginx {
  url: string
  /** What nginx wrote to its standard output: the access log. */
  accessLog(): string
  stop(): Promise<void>
}

/** Runs nginx in the foreground with its own prefix; resolves once it proxies /healthz. */
async function startNginx(prefix: string, conf: string, port: number): Promise<Nginx> {
  const confPath = join(prefix, 'nginx.conf')
  await writeFile(confPath, conf)
  // The access log goes to /dev/stdout, which nginx opens by name: that works on a file or
  // a pipe (as in a container) but not on the socket Node gives a child for 'pipe'.
  const accessLog = join(prefix, 'access.log')
  const stdout = openSync(accessLog, 'a')
  const child: ChildProcess = spawn(
    nginxBinary,
    ['-p', prefix, '-c', confPath, '-e', 'stderr', '-g', `daemon off; pid ${join(prefix, 'nginx.pid')};`],
    { stdio: ['ignore', stdout, 'pipe'] },
  )
  closeSync(stdout)
  let output = ''
  child.stderr?.on('data', (chunk) => (output += chunk))
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  const failed = new Promise<never>((_, reject) => {
    child.on('error', (error) => reject(new Error(`could not run nginx: ${error.message}`)))
    void exited.then(() => reject(new Error(`nginx exited:\n${output}`)))
  })
  failed.catch(() => {})
  const url = `http://127.0.0.1:${port}`
  const nginx = {
    url,
    accessLog: () => readFileSync(accessLog, 'utf8'),
    async stop() {
      // SIGTERM makes the master stop its workers before it exits; SIGKILL would orphan them.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const up = await Promise.race([
      fetch(`${url}/healthz`).then(
        (response) => response.ok,
        () => false,
      ),
      failed,
    ])
    if (up) return nginx
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await nginx.stop()
  throw new Error(`nginx did not proxy /healthz in time:\n${output}`)
}

/** tRPC over plain HTTP, as any client sends it. */
async function call(base: string, key: string, path: string, input: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}/trpc/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  })
  const text = await response.text()
  // nginx's own error pages (a 502) are HTML.
  const body = text.startsWith('{') ? JSON.parse(text) : undefined
  return { status: response.status, headers: response.headers, data: body?.result?.data }
}

describe('three tokend replicas behind nginx (infra/nginx/nginx.conf)', () => {
  let prefix: string
  let database: Awaited<ReturnType<typeof freshDatabase>>
  let replicas: ServiceProcess[] = []
  let nginx: Nginx | undefined
  let operatorKey: string

  beforeAll(async () => {
    nginxBinary = await ensureDebianProgram('nginx') // installed, or fail at once with the reason, before anything starts
    prefix = await mkdtemp(join(tmpdir(), 'tokend-nginx-'))
    database = await freshDatabase()
    const ports = [await freePort(), await freePort(), await freePort()]
    const bootstrapFile = join(prefix, 'bootstrap.key')
    replicas = await Promise.all(
      ports.map((port) =>
        startTokendProcess({
          DATABASE_URL: database.url,
          PORT: String(port),
          TOKEND_BOOTSTRAP_TOKEN_FILE: bootstrapFile,
          // As in compose.yaml: nginx runs on the same host here, so loopback is the proxy.
          TOKEND_TRUST_PROXY: 'loopback',
        }),
      ),
    )
    operatorKey = (await readFile(bootstrapFile, 'utf8')).trim()

    const conf = await readFile(join(repoRoot, 'infra/nginx/nginx.conf'), 'utf8')
    const nginxPort = await freePort()
    const upstreams = replicas.map((replica) => new URL(replica.url).host)
    nginx = await startNginx(prefix, renderNginxConf(conf, upstreams, nginxPort), nginxPort)
  }, 480_000) // apt-get may first have to install nginx

  afterAll(async () => {
    await nginx?.stop()
    await Promise.all(replicas.map((replica) => replica.stop()))
    await database?.drop()
    if (prefix) await rm(prefix, { recursive: true, force: true })
  })

  const via = () => (nginx as Nginx).url

  it('issues, verifies, revokes and verifies again through nginx', async () => {
    const issued = await call(via(), operatorKey, 'token.issue', {
      name: 'voice-api',
      environment: 'test',
      scopes: ['recordings:read'],
    })
    expect(issued.status).toBe(200)
    const { token, id } = issued.data
    const verify = { token, require: { scopes: ['recordings:read'] } }
    expect((await call(via(), operatorKey, 'token.verify', verify)).data).toMatchObject({ valid: true, tokenId: id })
    expect((await call(via(), operatorKey, 'token.revoke', { id })).data).toEqual({ id, revokedAt: expect.any(String) })
    // Round-robin: every replica answers one of these, and every one must know of the revocation.
    for (let i = 0; i < 6; i++) {
      expect((await call(via(), operatorKey, 'token.verify', { token })).data).toEqual({
        valid: false,
        reason: 'REVOKED',
      })
    }
    // The same over REST.
    const rest = await fetch(`${via()}/api/v1/tokens/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    })
    expect(await rest.json()).toEqual({ valid: false, reason: 'REVOKED' })
  })

  it("passes the caller's request id, makes one when there is none, and states the caller's address", async () => {
    const requestId = `nginx-test-${Date.now()}`
    const given = await call(
      via(),
      operatorKey,
      'token.issue',
      { name: 'with id', environment: 'test' },
      {
        'x-request-id': requestId,
        // A forged address: nginx must replace it, or tokend would audit it as the caller's.
        'x-forwarded-for': '203.0.113.7',
      },
    )
    expect(given.headers.get('x-request-id')).toBe(requestId)

    const made = await fetch(`${via()}/trpc/me`, { headers: { authorization: `Bearer ${operatorKey}` } })
    expect(made.status).toBe(200)
    // nginx's $request_id (32 hex digits), not a UUID that tokend would make itself.
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/)

    const audit = await query(
      database.url,
      "select address, request_id from audit_events where action = 'token.issue' and target_id = $1",
      [given.data.id],
    )
    expect(audit).toEqual([{ address: '127.0.0.1', request_id: requestId }])
  })

  it('streams change events through nginx as they happen', async () => {
    const abort = new AbortController()
    const stream = await fetch(`${via()}/trpc/token.changes`, {
      headers: { authorization: `Bearer ${operatorKey}` },
      signal: abort.signal,
    })
    expect(stream.headers.get('content-type')).toContain('text/event-stream')
    const reader = (stream.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader()
    let received = ''
    const until = async (text: string) => {
      while (!received.includes(text)) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`the stream ended before ${text}:\n${received}`)
        received += value
      }
    }
    try {
      await until('{"type":"ready","scope":"all"}')
      const { id } = (await call(via(), operatorKey, 'token.issue', { name: 'streamed', environment: 'test' })).data
      const revokedAt = Date.now()
      await call(via(), operatorKey, 'token.revoke', { id })
      await until('"type":"key"')
      // tRPC also sends `X-Accel-Buffering: no`, so this checks the stream end to end rather
      // than nginx.conf's `proxy_buffering off` alone.
      expect(Date.now() - revokedAt).toBeLessThan(1_000)
    } finally {
      abort.abort()
    }
  })

  it('keeps verifying while a replica is killed, and the survivors honour a revoke made through nginx', async () => {
    const { token, id } = (await call(via(), operatorKey, 'token.issue', { name: 'kept', environment: 'test' })).data
    // Every replica holds the key as valid in its cache, so the revocation has to reach them.
    for (const replica of replicas) {
      expect((await call(replica.url, operatorKey, 'token.verify', { token })).data.valid).toBe(true)
    }

    const results: { status: number; valid: boolean | undefined; afterKill: boolean }[] = []
    let killed = false
    let running = true
    const loop = async () => {
      while (running) {
        const reply = await call(via(), operatorKey, 'token.verify', { token }).catch(() => ({
          status: 0,
          data: undefined,
        }))
        results.push({ status: reply.status, valid: reply.data?.valid, afterKill: killed })
      }
    }
    const loops = [loop(), loop(), loop(), loop()]
    while (results.length < 200) await new Promise((resolve) => setTimeout(resolve, 10))
    const victim = replicas[1] as ServiceProcess
    expect(await victim.stop('SIGKILL')).toBeNull()
    killed = true
    // Longer than the upstream's fail_timeout (5 s), so nginx also tries the dead replica again.
    await new Promise((resolve) => setTimeout(resolve, 6_000))
    running = false
    await Promise.all(loops)

    const failures = results.filter((result) => result.status !== 200 || result.valid !== true)
    expect(failures).toEqual([])
    expect(results.filter((result) => result.afterKill).length).toBeGreaterThan(200)
    // nginx met the dead replica and passed those requests on to the next one.
    const dead = new URL(victim.url).host
    expect((nginx as Nginx).accessLog()).toMatch(
      new RegExp(`upstream=${dead}, 127\\.0\\.0\\.1:\\d+ upstream_status=502, 200`),
    )

    const revoked = await call(via(), operatorKey, 'token.revoke', { id })
    expect(revoked.status).toBe(200)
    const survivors = replicas.filter((replica) => replica !== victim)
    for (const replica of survivors) {
      // The replica that served the revoke rejects at once; the other within the change event's trip.
      const deadline = Date.now() + 1_000
      let reply = await call(replica.url, operatorKey, 'token.verify', { token })
      while (reply.data.valid && Date.now() < deadline) {
        reply = await call(replica.url, operatorKey, 'token.verify', { token })
      }
      expect(reply.data).toEqual({ valid: false, reason: 'REVOKED' })
    }
    for (let i = 0; i < 6; i++) {
      expect((await call(via(), operatorKey, 'token.verify', { token })).data).toEqual({
        valid: false,
        reason: 'REVOKED',
      })
    }
  })
})
