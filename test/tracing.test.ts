import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { createTokendClient } from '@tokend/client'
import { Caller, freePort, type RunningTokend, repoRoot, startTokend } from '@tokend/testing'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, call, tokendClients } from '../services/auth/test/grpc-client.ts'

/**
 * SPEC §15's tracing: tokend started with OTEL_EXPORTER_OTLP_ENDPOINT at a collector of
 * this test's own (a plain HTTP server that keeps what OTLP/HTTP JSON posts to it), and
 * callers that send a W3C `traceparent` — by hand, through @tokend/client, and through
 * its middleware.
 */
interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: { key: string; value: { stringValue?: string; boolValue?: boolean; intValue?: number | string } }[]
}

let collector: Server
const spans: OtlpSpan[] = []
let tokend: RunningTokend
let operator: Caller
let grpcPort: number

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let body = Buffer.concat(chunks)
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
      if (req.url === '/v1/traces') {
        const message = JSON.parse(body.toString('utf8'))
        for (const resource of message.resourceSpans ?? []) {
          for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []))
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  const { port } = collector.address() as AddressInfo
  grpcPort = await freePort()
  tokend = await startTokend({
    TOKEND_GRPC_PORT: String(grpcPort),
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    // Export within 100 ms rather than the default 5 s.
    OTEL_BSP_SCHEDULE_DELAY: '100',
  })
  operator = new Caller(tokend.url, tokend.bootstrapKey)
}, 120_000)

afterAll(async () => {
  await tokend?.stop()
  collector?.close()
})

const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const attribute = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value
  return value?.stringValue ?? value?.boolValue ?? value?.intValue
}

/** The spans of trace `traceId`, once `done` says they are all there (15 s at most). */
async function spansOf(traceId: string, done: (found: OtlpSpan[]) => boolean): Promise<OtlpSpan[]> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const found = spans.filter((span) => span.traceId === traceId)
    if (done(found)) return found
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${JSON.stringify(found.map((s) => s.name))}`)
    await sleep(50)
  }
}

async function issue(name: string): Promise<string> {
  const reply = await operator.mutation('token.issue', { name, environment: 'live' })
  expect(reply.status).toBe(200)
  return reply.body.result.data.token
}

async function verifyWith(traceparent: string, token: string) {
  const response = await fetch(`${tokend.url}/trpc/token.verify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokend.bootstrapKey}`, 'content-type': 'application/json', traceparent },
    body: JSON.stringify({ token }),
  })
  expect(response.status).toBe(200)
  return ((await response.json()) as { result: { data: { valid: boolean } } }).result.data
}

const named = (found: OtlpSpan[], name: string) => found.filter((span) => span.name === name)

describe('tracing with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  it("exports a verify's spans in the caller's trace: request, verify, cache lookup, database query", async () => {
    const token = await issue('traced')
    const traceId = hex(16)
    const callerSpan = hex(8)
    expect(await verifyWith(`00-${traceId}-${callerSpan}-01`, token)).toMatchObject({ valid: true })

    const found = await spansOf(traceId, (s) => named(s, 'pg.query').length > 0 && named(s, 'POST').length > 0)
    const [server] = named(found, 'POST')
    expect(server).toMatchObject({ parentSpanId: callerSpan, kind: 2 }) // SERVER
    expect(attribute(server as OtlpSpan, 'url.path')).toBe('/trpc/token.verify')
    expect(attribute(server as OtlpSpan, 'http.response.status_code')).toBe(200)
    const [verify] = named(found, 'tokend.verify')
    expect(verify?.parentSpanId).toBe(server?.spanId)
    expect(attribute(verify as OtlpSpan, 'tokend.verify.valid')).toBe(true)
    // The traced key was not cached yet: its lookup missed and went to Postgres.
    const lookup = named(found, 'tokend.cache.lookup').find((span) => span.parentSpanId === verify?.spanId)
    expect(lookup && attribute(lookup, 'tokend.cache.hit')).toBe(false)
    const query = named(found, 'pg.query').find((span) => span.parentSpanId === lookup?.spanId)
    expect(query).toBeDefined()
    expect(String(attribute(query as OtlpSpan, 'db.query.text'))).toMatch(/select/i)
    // No span, attribute or statement carries the key itself.
    expect(JSON.stringify(found)).not.toContain(token.slice(8))
  })

  it('answers a cached key without a database span, and reports a denial on the verify span', async () => {
    const token = await issue('cached')
    await verifyWith(`00-${hex(16)}-${hex(8)}-01`, token)
    const traceId = hex(16)
    await verifyWith(`00-${traceId}-${hex(8)}-01`, token)
    const found = await spansOf(traceId, (s) => named(s, 'POST').length > 0)
    const verify = named(found, 'tokend.verify')[0] as OtlpSpan
    const lookup = named(found, 'tokend.cache.lookup').find((span) => span.parentSpanId === verify.spanId)
    expect(lookup && attribute(lookup, 'tokend.cache.hit')).toBe(true)
    expect(named(found, 'pg.query')).toEqual([])

    const denied = hex(16)
    expect(await verifyWith(`00-${denied}-${hex(8)}-01`, 'tk_live_nonsense')).toMatchObject({ valid: false })
    const refused = await spansOf(denied, (s) => named(s, 'tokend.verify').length > 0)
    expect(attribute(named(refused, 'tokend.verify')[0] as OtlpSpan, 'tokend.verify.reason')).toBe('MALFORMED')
  })

  it('starts a trace of its own for a request without traceparent, and ignores a malformed one', async () => {
    const before = spans.length
    await verifyWith('00-not-a-trace-01', await issue('untraced'))
    const deadline = Date.now() + 15_000
    while (!spans.slice(before).some((span) => span.name === 'tokend.verify')) {
      if (Date.now() > deadline) throw new Error('no verify span')
      await sleep(50)
    }
    const verify = spans.slice(before).find((span) => span.name === 'tokend.verify') as OtlpSpan
    const server = spans.find((span) => span.spanId === verify.parentSpanId)
    expect(server?.name).toBe('POST')
    expect(server?.parentSpanId ?? '').toBe('')
  })

  it("honours traceparent in gRPC metadata: the call's span is the caller's child", async () => {
    const token = await issue('grpc')
    const clients = tokendClients(`127.0.0.1:${grpcPort}`)
    try {
      const traceId = hex(16)
      const parent = hex(8)
      const metadata = bearer(tokend.bootstrapKey)
      metadata.set('traceparent', `00-${traceId}-${parent}-01`)
      const answer = await call(clients.tokens.Verify, clients.tokens, { token }, metadata)
      expect(answer).toMatchObject({ valid: true })
      const found = await spansOf(traceId, (s) => named(s, 'tokend.verify').length > 0)
      const [server] = named(found, 'tokend.v1.Tokens/Verify')
      expect(server).toMatchObject({ parentSpanId: parent, kind: 2 })
      expect(named(found, 'tokend.verify')[0]?.parentSpanId).toBe(server?.spanId)
    } finally {
      clients.close()
    }
  })

  it('@tokend/client sends traceparent: given explicitly, from the active span, and from requireAuth', async () => {
    const serviceKey = tokend.bootstrapKey
    const client = createTokendClient({ url: tokend.url, serviceKey })
    const token = await issue('client')

    const explicit = hex(16)
    await client.verify(token, { traceparent: `00-${explicit}-${hex(8)}-01` })
    await spansOf(explicit, (s) => named(s, 'tokend.verify').length > 0)

    // An application with OpenTelemetry, in a process of its own (test/fixtures/traced-verify.ts):
    // the active span's context goes along.
    const active = hex(16)
    const parent = hex(8)
    const child = spawn(
      process.execPath,
      ['--conditions=tokend-source', '--import', 'tsx', join(repoRoot, 'test/fixtures/traced-verify.ts')],
      {
        env: { PATH: process.env.PATH, TOKEND_URL: tokend.url, TOKEND_SERVICE_KEY: serviceKey },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    )
    let printed = ''
    child.stdout.on('data', (chunk) => (printed += chunk))
    child.stdin.end(JSON.stringify({ token, traceId: active, spanId: parent }))
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0)
    expect(JSON.parse(printed)).toMatchObject({ valid: true })
    const found = await spansOf(active, (s) => named(s, 'POST').length > 0)
    expect(named(found, 'POST')[0]?.parentSpanId).toBe(parent)

    // An application without it: requireAuth passes on the trace its own caller sent.
    const app = express().get('/thing', client.requireAuth(), (_req, res) => {
      res.json({ ok: true })
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    try {
      const incoming = hex(16)
      const { port } = server.address() as AddressInfo
      const response = await fetch(`http://127.0.0.1:${port}/thing`, {
        headers: { authorization: `Bearer ${token}`, traceparent: `00-${incoming}-${hex(8)}-01` },
      })
      expect(response.status).toBe(200)
      await spansOf(incoming, (s) => named(s, 'tokend.verify').length > 0)
    } finally {
      server.close()
      client.close()
    }
  })

  it("exits 0 on SIGTERM with the last request's spans sent", async () => {
    const traceId = hex(16)
    await verifyWith(`00-${traceId}-${hex(8)}-01`, await issue('last'))
    expect(await tokend.process.stop('SIGTERM')).toBe(0)
    await spansOf(traceId, (s) => named(s, 'tokend.verify').length > 0 && named(s, 'POST').length > 0)
  })
})
