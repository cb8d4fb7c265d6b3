import { createConnection, type Socket } from 'node:net'
import { text } from 'node:stream/consumers'
import autocannon from 'autocannon'
import type { LoadJob, LoadResult } from './load.ts'
import { summarize } from './stats.ts'

const HEAD_END = Buffer.from('\r\n\r\n')

/** Reads a LoadJob as JSON on stdin, runs it, prints a LoadResult as JSON on stdout. */
const job = JSON.parse(await text(process.stdin)) as LoadJob
const result = job.pacedRate ? await paced(job, job.pacedRate) : await saturating(job)
process.stdout.write(JSON.stringify(result))

function nextBody(job: LoadJob): () => string {
  let index = job.offset ?? 0
  return () => job.bodies[index++ % job.bodies.length] as string
}

/**
 * As fast as the server answers: autocannon, one request in flight per connection. One
 * body is sent as one prebuilt request: rebuilding it per request (`setupRequest`) held
 * autocannon to ~10k requests/s on its core, below what bare node:http serves.
 */
async function saturating(job: LoadJob): Promise<LoadResult> {
  const latencies: number[] = []
  const body = nextBody(job)
  let bodiesUsed = 0
  const url = new URL(job.url)
  const request =
    job.bodies.length === 1
      ? { method: 'POST' as const, path: url.pathname + url.search, headers: job.headers, body: job.bodies[0] }
      : {
          method: 'POST' as const,
          path: url.pathname + url.search,
          headers: job.headers,
          setupRequest: (req: autocannon.Request) => {
            bodiesUsed++
            return { ...req, body: body() }
          },
        }
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    ...(job.amount ? { amount: job.amount } : { duration: job.durationS }),
    requests: [request],
    setupClient: (client) => {
      client.on('response', (_status: number, _bytes: number, ms: number) => latencies.push(ms))
    },
  })
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, (stats as { count: number }).count]),
  )
  return {
    requests: latencies.length,
    durationS: result.duration,
    rps: latencies.length / result.duration,
    statusCodes,
    non2xx: result.non2xx,
    errors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    latency: summarize(latencies),
    bodiesUsed: job.bodies.length === 1 ? latencies.length : bodiesUsed,
  }
}

/**
 * `rate` requests per second on a fixed schedule over `connections` keep-alive sockets,
 * written as raw HTTP/1.1 (one request in flight per socket, Nagle off). node:http's
 * client costs several times more per request and, near a few thousand a second on one
 * core, its own delays would be measured as the server's. Latency counts from the
 * moment a request is released (the schedule's tick, every millisecond); one released
 * while every socket is busy waits for the first free one, and that wait counts too, as
 * a real client would see it.
 */
async function paced(job: LoadJob, rate: number): Promise<LoadResult> {
  const url = new URL(job.url)
  const head =
    `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n` +
    Object.entries(job.headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('')
  const body = nextBody(job)
  const latencies: number[] = []
  const statusCodes: Record<string, number> = {}
  const waiting: number[] = []
  const idle: Connection[] = []
  let sent = 0
  let errors = 0
  let inFlight = 0

  const finish = (connection: Connection, status: string | undefined) => {
    inFlight--
    if (status === undefined) {
      errors++ // the socket is gone: its place is not taken again
      return
    }
    latencies.push(performance.now() - connection.dueAt)
    statusCodes[status] = (statusCodes[status] ?? 0) + 1
    const next = waiting.shift()
    if (next === undefined) idle.push(connection)
    else send(connection, next)
  }
  const send = (connection: Connection, dueAt: number) => {
    const payload = body()
    connection.dueAt = dueAt
    inFlight++
    connection.socket.write(`${head}content-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`)
  }
  const connections = await Promise.all(
    Array.from({ length: job.connections }, () => connect(url, (connection, status) => finish(connection, status))),
  )
  idle.push(...connections)

  const start = performance.now()
  const end = start + job.durationS * 1000
  // Every millisecond, release what the schedule says is due by now.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = Math.floor(((Math.min(now, end) - start) / 1000) * rate)
      for (; sent < due; sent++) {
        const connection = idle.pop()
        if (connection) send(connection, now)
        else waiting.push(now)
      }
      if (now < end) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  const durationS = (performance.now() - start) / 1000
  // Give the last requests up to 10 s; what is still unanswered then has timed out.
  const drainUntil = performance.now() + 10_000
  while ((inFlight > 0 || waiting.length > 0) && performance.now() < drainUntil) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  for (const connection of connections) connection.socket.destroy()
  const non2xx = Object.entries(statusCodes)
    .filter(([code]) => !code.startsWith('2'))
    .reduce((sum, [, count]) => sum + count, 0)
  return {
    requests: latencies.length,
    durationS,
    rps: latencies.length / durationS,
    statusCodes,
    non2xx,
    errors,
    timeouts: inFlight + waiting.length,
    latency: summarize(latencies),
    bodiesUsed: sent,
  }
}

interface Connection {
  socket: Socket
  /** When the request in flight was released. */
  dueAt: number
}

/**
 * A keep-alive socket that reads responses framed by content-length (every answer of
 * tokend's verify and of the baseline has one) and reports each with its status; a
 * response it cannot frame reports no status and ends the socket's use.
 */
function connect(url: URL, done: (connection: Connection, status: string | undefined) => void): Promise<Connection> {
  const socket = createConnection({ host: url.hostname, port: Number(url.port), noDelay: true })
  const connection: Connection = { socket, dueAt: 0 }
  let buffered: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    for (;;) {
      const headEnd = buffered.indexOf(HEAD_END)
      if (headEnd < 0) return
      const headText = buffered.subarray(0, headEnd).toString('latin1')
      const length = /\r\ncontent-length: *(\d+)/i.exec(headText)?.[1]
      if (length === undefined) {
        socket.destroy()
        done(connection, undefined)
        return
      }
      const total = headEnd + HEAD_END.length + Number(length)
      if (buffered.length < total) return
      buffered = buffered.subarray(total)
      done(connection, headText.slice(9, 12))
    }
  })
  socket.on('error', () => {})
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(connection))
    socket.once('error', reject)
  })
}
