import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Caller, freePort } from '@tokend/testing'
import { p99Chart } from './chart-svg.ts'
import { type LoadResult, runLoad } from './load.ts'
import { cpuMicros, type ServerProcess, startBareServer, startBetterAuth, startPinnedTokend } from './processes.ts'
import {
  type BenchEnv,
  type Contender,
  type Figure,
  ratioFigure,
  round,
  type ScenarioResult,
  type Series,
  spread,
  verdict,
} from './report-types.ts'
import { median, pairedRatio } from './stats.ts'
import { BENCH_LIMITS, call, createAccount, issueKey, verifyBody } from './tokend-api.ts'

/** One contender of the comparison: a server, the request it is sent, and what it measured. */
interface Entrant {
  name: string
  server: ServerProcess
  url: string
  headers: Record<string, string>
  body: string
  /** Verifies one request carries (16 for the batch). */
  verifies: number
  expect(answer: any): boolean
  /** Requests per CPU-time measurement (the slow peer gets fewer). */
  cpuRequests: number
  problems: string[]
  rps: number[]
  cpuUs: number[]
  bytes: number[]
  failed: number
}

const isValid = (answer: any) => answer?.result?.data?.valid === true

/**
 * Issue 17's honest baselines, in one run with the same pinning and load generator:
 * tokend's cache-hit verify (single, batch of 16, REST) beside a bare `node:http` route
 * (one SHA-256 and a Map lookup, JSON in and out), the bare express route of P1, and
 * better-auth's API-key verify with its cache on (P13). For each: requests/s at
 * saturation, CPU µs per verify (utime + stime over a fixed request count), and for
 * tokend and bare node:http the bytes allocated per request (P10, heap sampling with
 * garbage included) and the p99 at fixed rates (P11).
 */
export async function hotPath(env: BenchEnv): Promise<ScenarioResult> {
  const { settings } = env
  env.log('hot path: starting tokend, bare node:http, bare express and better-auth')
  const database = await env.createDatabase()
  const peerDatabase = await env.createDatabase()
  const dir = await mkdtemp(join(tmpdir(), 'tokend-hotpath-'))
  const servers: ServerProcess[] = []
  try {
    const keyFile = join(dir, 'bootstrap.key')
    const tokend = await startPinnedTokend(
      {
        DATABASE_URL: database.url,
        PORT: String(await freePort()),
        TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
        ...BENCH_LIMITS,
      },
      join(dir, 'tokend.heap'),
    )
    servers.push(tokend)
    const bootstrapKey = (await readFile(keyFile, 'utf8')).trim()
    const admin = new Caller(tokend.url, bootstrapKey)
    const accountId = await createAccount(admin, 'bench')
    const issued = []
    for (let i = 0; i < settings.batchSize; i++) issued.push(await issueKey(admin, accountId, `bench-${i}`))
    const hitKey = (issued[0] as { token: string }).token
    const hitAnswer = await call(admin, 'token.verify', { token: hitKey })
    const bareHttp = await startBareServer(await freePort(), [[hitKey, hitAnswer]], 'http', join(dir, 'bare.heap'))
    servers.push(bareHttp)
    const bareExpress = await startBareServer(await freePort(), [[hitKey, hitAnswer]], 'express')
    servers.push(bareExpress)

    const headers = { 'content-type': 'application/json', authorization: `Bearer ${bootstrapKey}` }
    const contender = (
      name: string,
      server: ServerProcess,
      path: string,
      body: string,
      expect: Entrant['expect'],
      verifies = 1,
      cpuRequests = settings.cpuRequests,
    ): Entrant => ({
      name,
      server,
      url: server.url + path,
      headers,
      body,
      verifies,
      expect,
      cpuRequests,
      problems: [],
      rps: [],
      cpuUs: [],
      bytes: [],
      failed: 0,
    })
    const single = contender('tokend token.verify', tokend, '/trpc/token.verify', verifyBody(hitKey), isValid)
    const batch = contender(
      `tokend batch of ${settings.batchSize}`,
      tokend,
      `/trpc/${Array(settings.batchSize).fill('token.verify').join(',')}?batch=1`,
      JSON.stringify(Object.fromEntries(issued.map((key, i) => [i, { token: key.token }]))),
      (answer) => Array.isArray(answer) && answer.length === settings.batchSize && answer.every(isValid),
      settings.batchSize,
      Math.ceil(settings.cpuRequests / 4),
    )
    const rest = contender('tokend REST', tokend, '/api/v1/tokens/verify', verifyBody(hitKey), (a) => a?.valid === true)
    const http = contender('bare node:http', bareHttp, '/verify', verifyBody(hitKey), isValid)
    const express = contender('bare express', bareExpress, '/verify', verifyBody(hitKey), isValid)
    const contenders = [single, batch, rest, http, express]

    let peer: Entrant | undefined
    let peerMissing: string | undefined
    try {
      const peerKeyFile = join(dir, 'better-auth.key')
      const server = await startBetterAuth(await freePort(), peerDatabase.url, peerKeyFile)
      servers.push(server)
      const key = (await readFile(peerKeyFile, 'utf8')).trim()
      peer = contender(
        'better-auth API key',
        server,
        '/verify',
        verifyBody(key),
        isValid,
        1,
        Math.ceil(settings.cpuRequests / 20),
      )
      contenders.push(peer)
    } catch (error) {
      peerMissing = error instanceof Error ? error.message.split('\n')[0] : String(error)
      env.log(`better-auth did not start: ${peerMissing}`)
    }

    for (const each of contenders) await checkAnswer(each)
    for (const each of contenders) {
      env.log(`hot path warm-up: ${each.name}`)
      await saturate(each, { durationS: settings.warmupS })
    }
    for (let rep = 1; rep <= settings.repetitions; rep++) {
      for (const each of contenders) {
        env.log(`hot path ${rep}/${settings.repetitions}: ${each.name}`)
        const run = await saturate(each, { durationS: settings.durationS })
        each.rps.push(run.rps)
        const before = cpuMicros(each.server.pid)
        const counted = await saturate(each, { amount: each.cpuRequests })
        each.cpuUs.push((cpuMicros(each.server.pid) - before) / (counted.requests * each.verifies))
        if (each === single || each === http) {
          each.bytes.push(await bytesPerRequest(each, settings.heapRequests))
        }
      }
    }

    env.log(`P11: p99 at ${settings.pacedRates.join(', ')} req/s, tokend and bare node:http`)
    const paced = new Map<number, { tokend: number[]; bare: number[]; problems: string[] }>()
    for (const rate of settings.pacedRates) {
      const at = { tokend: [] as number[], bare: [] as number[], problems: [] as string[] }
      paced.set(rate, at)
      for (let rep = 1; rep <= settings.repetitions; rep++) {
        for (const [each, into] of [
          [single, at.tokend],
          [http, at.bare],
        ] as const) {
          const run = await runLoad({
            url: each.url,
            headers: each.headers,
            bodies: [each.body],
            connections: settings.connections,
            durationS: settings.durationS,
            pacedRate: rate,
          })
          into.push(run.latency.p99)
          const failed = run.non2xx + run.errors + run.timeouts
          if (failed > 0) at.problems.push(`${each.name} at ${rate}/s: ${failed} failed requests`)
        }
      }
    }

    const figures: Figure[] = []
    const problems = (...of: Entrant[]) => [
      ...of.flatMap((each) => each.problems),
      ...of.filter((each) => each.failed > 0).map((each) => `${each.name}: ${each.failed} failed requests`),
    ]
    figures.push(
      ratioFigure(
        {
          id: 'P1n',
          figure: 'cache-hit token.verify vs bare node:http route (requests/s; issue 17)',
          target: '≥ 0.7×',
          min: 0.7,
        },
        pairedRatio(single.rps, http.rps),
        problems(single, http),
        [
          `token.verify ${round(median(single.rps), 0)} req/s, bare node:http ${round(median(http.rps), 0)} req/s (medians)`,
        ],
      ),
      ratioFigure(
        {
          id: 'P1u',
          figure: 'CPU per cache-hit verify vs bare node:http (utime + stime; issue 17)',
          target: '≤ 1.4×',
          max: 1.4,
        },
        pairedRatio(single.cpuUs, http.cpuUs),
        problems(single, http),
        [
          `token.verify ${round(median(single.cpuUs), 1)} µs, bare node:http ${round(median(http.cpuUs), 1)} µs ` +
            `per request (medians over ${settings.cpuRequests} requests each)`,
        ],
      ),
    )
    const p10 = median(single.bytes)
    figures.push({
      id: 'P10',
      figure: 'bytes allocated per cache-hit verify (heap sampling, garbage included)',
      measured: p10,
      shown: `${(p10 / 1024).toFixed(1)} KiB`,
      target: '≤ 4 KB',
      verdict: verdict(p10 <= 4000, problems(single)),
      notes: [
        `${settings.heapRequests} requests while V8's sampling heap profiler ran (1 KiB interval, objects collected by ` +
          'minor and major GCs kept), its estimate of all bytes allocated divided by the requests',
        `bare node:http: ${(median(http.bytes) / 1024).toFixed(1)} KiB per request, so tokend's own share is ` +
          `${((p10 - median(http.bytes)) / 1024).toFixed(1)} KiB: node:http's request, response and socket writes ` +
          'alone allocate more than the target',
      ],
    })
    const rateSeries: Series[] = []
    for (const [rate, at] of paced) {
      const ratio = pairedRatio(at.tokend, at.bare)
      const tokendP99 = median(at.tokend)
      const absolute = rate === 3_000 ? tokendP99 <= 2 : true
      figures.push({
        ...ratioFigure(
          {
            id: `P11${String.fromCharCode(96 + settings.pacedRates.indexOf(rate) + 1)}`,
            figure: `cache-hit p99 at ${rate} req/s vs bare node:http${rate === 3_000 ? ' (and ≤ 2 ms)' : ''}`,
            target: rate === 3_000 ? '≤ 1.5×, ≤ 2 ms' : '≤ 1.5×',
            max: 1.5,
          },
          ratio,
          at.problems,
          [
            `p99 tokend ${tokendP99.toFixed(2)} ms (${spread(at.tokend, 2)}), bare node:http ` +
              `${median(at.bare).toFixed(2)} ms (${spread(at.bare, 2)}); open loop over ${settings.connections} connections`,
          ],
        ),
        ...(absolute ? {} : { verdict: at.problems.length > 0 ? 'invalid' : 'FAIL' }),
      })
      const last = figures.at(-1) as Figure
      last.shown += ` (${tokendP99.toFixed(2)} ms)`
      rateSeries.push(
        {
          name: `tokend p99 at ${rate}/s (P11)`,
          unit: 'ms',
          median: round(tokendP99),
          repetitions: at.tokend.map((v) => round(v)),
        },
        {
          name: `bare node:http p99 at ${rate}/s (P11)`,
          unit: 'ms',
          median: round(median(at.bare)),
          repetitions: at.bare.map((v) => round(v)),
        },
      )
    }
    if (peer) {
      figures.push(
        ratioFigure(
          {
            id: 'P13',
            figure: "cache-hit verify vs better-auth's API-key verify, cache on (requests/s)",
            target: '≥ 5×',
            min: 5,
          },
          pairedRatio(single.rps, peer.rps),
          problems(single, peer),
          [
            `token.verify ${round(median(single.rps), 0)} req/s, better-auth ${round(median(peer.rps), 1)} req/s (medians)`,
            'better-auth 1.7.5 with @better-auth/api-key 1.7.5: storage "secondary-storage" (an in-process Map) with ' +
              'fallbackToDatabase, its per-key rate limit off; same Postgres cluster, a database of its own',
          ],
        ),
      )
    } else {
      figures.push({
        id: 'P13',
        figure: "cache-hit verify vs better-auth's API-key verify, cache on (requests/s)",
        measured: null,
        shown: '—',
        target: '≥ 5×',
        verdict: `n/a (better-auth did not start: ${peerMissing})`,
        notes: [],
      })
    }

    const comparison: Contender[] = contenders.map((each) => ({
      name: each.name,
      requestsPerS: each.rps.map((v) => round(v, 0)),
      verifiesPerRequest: each.verifies,
      cpuUsPerVerify: each.cpuUs.map((v) => round(v, 1)),
      bytesPerRequest: each.bytes.map((v) => round(v, 0)),
    }))
    const chart = p99Chart(
      [
        { name: 'tokend token.verify', points: [...paced].map(([rate, at]) => ({ rate, values: at.tokend })) },
        { name: 'bare node:http', points: [...paced].map(([rate, at]) => ({ rate, values: at.bare })) },
      ],
      'cache-hit p99 against a fixed request rate (median, min–max of repetitions)',
    )
    const series: Series[] = [
      ...contenders.map((each) => ({
        name: `${each.name} (hot path)`,
        unit: 'requests/s',
        median: round(median(each.rps)),
        repetitions: each.rps.map((v) => round(v)),
      })),
      ...contenders.map((each) => ({
        name: `${each.name} CPU per verify`,
        unit: 'µs',
        median: round(median(each.cpuUs), 1),
        repetitions: each.cpuUs.map((v) => round(v, 1)),
      })),
      ...[single, http].map((each) => ({
        name: `${each.name} bytes allocated per request (P10)`,
        unit: 'B',
        median: round(median(each.bytes), 0),
        repetitions: each.bytes.map((v) => round(v, 0)),
      })),
      ...rateSeries,
    ]
    return {
      figures,
      series,
      comparison,
      charts: [{ file: 'benchmarks-p11.svg', svg: chart, alt: 'p99 against rate' }],
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
    await database.drop().catch(() => {})
    await peerDatabase.drop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

async function checkAnswer(each: Entrant): Promise<void> {
  const response = await fetch(each.url, { method: 'POST', headers: each.headers, body: each.body })
  const answer = await response.json().catch(() => undefined)
  if (response.status !== 200 || !each.expect(answer)) {
    each.problems.push(`${each.name} answered ${response.status} ${JSON.stringify(answer).slice(0, 200)}`)
  }
}

async function saturate(each: Entrant, length: { durationS: number } | { amount: number }): Promise<LoadResult> {
  const run = await runLoad({
    url: each.url,
    headers: each.headers,
    bodies: [each.body],
    connections: 50,
    durationS: 'durationS' in length ? length.durationS : 0,
    ...('amount' in length ? { amount: length.amount } : {}),
  })
  each.failed += run.non2xx + run.errors + run.timeouts
  return run
}

/** P10: the server's heap sampler on while `requests` are served; its bytes divided by the requests. */
async function bytesPerRequest(each: Entrant, requests: number): Promise<number> {
  const file = each.server.heapFile
  if (!file) throw new Error(`${each.name} has no heap sampler`)
  await samplerStep(each.server.pid, file)
  const run = await saturate(each, { amount: requests })
  const { bytes } = (await samplerStep(each.server.pid, file)) as { bytes: number }
  return bytes / run.requests
}

/** Signals the sampler and waits for its answer in `file`. */
async function samplerStep(pid: number, file: string): Promise<unknown> {
  if (existsSync(file)) await unlink(file)
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + 30_000
  for (;;) {
    if (existsSync(file)) {
      const text = await readFile(file, 'utf8')
      if (text) {
        const answer = JSON.parse(text) as { error?: string }
        if (answer.error) throw new Error(`heap sampler: ${answer.error}`)
        return answer
      }
    }
    if (Date.now() > deadline) throw new Error('the heap sampler did not answer')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
