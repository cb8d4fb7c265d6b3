import { Agent, request } from 'node:http'
import { text } from 'node:stream/consumers'
import autocannon from 'autocannon'
import type { LoadJob, LoadResult } from './load.ts'
import { summarize } from './stats.ts'

/** Reads a LoadJob as JSON on stdin, runs it, prints a LoadResult as JSON on stdout. */
const job = JSON.parse(await text(process.stdin)) as LoadJob
const result = job.pacedRate ? await paced(job, job.pacedRate) : await saturating(job)
process.stdout.write(JSON.stringify(result))

function nextBody(job: LoadJob): () => string {
  let index = job.offset ?? 0
  return () => job.bodies[index++ % job.bodies.length] as string
}

/** As fast as the server answers: autocannon, one request in flight per connection. */
async function saturating(job: LoadJob): Promise<LoadResult> {
  const latencies: number[] = []
  const body = nextBody(job)
  let bodiesUsed = 0
  const url = new URL(job.url)
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.durationS,
    requests: [
      {
        method: 'POST',
        path: url.pathname + url.search,
        headers: job.headers,
        setupRequest: (req) => {
          bodiesUsed++
          return { ...req, body: body() }
        },
      },
    ],
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
    bodiesUsed,
  }
}

/** `rate` requests per second on a fixed schedule, over at most `connections` keep-alive sockets. */
async function paced(job: LoadJob, rate: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.connections })
  const url = new URL(job.url)
  const body = nextBody(job)
  const latencies: number[] = []
  const statusCodes: Record<string, number> = {}
  let sent = 0
  let errors = 0
  let inFlight = 0
  const send = () => {
    const payload = body()
    const started = performance.now()
    inFlight++
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { ...job.headers, 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume()
        res.on('end', () => {
          latencies.push(performance.now() - started)
          statusCodes[res.statusCode ?? 0] = (statusCodes[res.statusCode ?? 0] ?? 0) + 1
          inFlight--
        })
      },
    )
    req.on('error', () => {
      errors++
      inFlight--
    })
    req.end(payload)
  }
  const start = performance.now()
  const end = start + job.durationS * 1000
  // Every millisecond, send what the schedule says is due by now.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = Math.floor(((Math.min(now, end) - start) / 1000) * rate)
      while (sent < due) {
        send()
        sent++
      }
      if (now < end) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  const durationS = (performance.now() - start) / 1000
  // Give the last requests up to 10 s; what is still unanswered then has timed out.
  const drainUntil = performance.now() + 10_000
  while (inFlight > 0 && performance.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 5))
  agent.destroy()
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
    timeouts: inFlight,
    latency: summarize(latencies),
    bodiesUsed: sent,
  }
}
