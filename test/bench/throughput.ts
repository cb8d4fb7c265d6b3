import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKey } from '@tokend/keys'
import { Caller, freePort } from '@tokend/testing'
import { type GrpcLoadJob, runGrpcLoad } from './grpc-load.ts'
import { type LoadResult, runLoad } from './load.ts'
import { type ServerProcess, startBareServer, startPinnedTokend } from './processes.ts'
import {
  type BenchEnv,
  type Figure,
  ratioFigure,
  round,
  type ScenarioResult,
  type Series,
  verdict,
} from './report-types.ts'
import { median, pairedRatio } from './stats.ts'
import {
  BENCH_LIMITS,
  type CacheCounters,
  cacheCounters,
  call,
  createAccount,
  insertKeys,
  issueKey,
  lookalikes,
  metric,
  verifyBody,
} from './tokend-api.ts'

/** One kind of request sent at full speed, measured in repetitions. */
interface Load {
  name: string
  server: ServerProcess
  url: string
  headers: Record<string, string>
  bodies: string[]
  /** Where the next run continues in `bodies` (so the miss load never repeats a recent key). */
  offset: number
  /** tokend (cache counters are read around each run) or the baseline. */
  counted: boolean
  /** What a correct answer looks like; a wrong one makes the figure invalid. */
  expect(answer: any): boolean
  /** A gRPC load instead of HTTP (P12): the worker itself counts answers that are not allows. */
  grpc?: Omit<GrpcLoadJob, 'connections' | 'durationS'>
  problems: string[]
  warmup?: Run
  runs: Run[]
}

type Run = LoadResult & { cache?: CacheCounters }

const isValid = (answer: any) => answer?.result?.data?.valid === true
const hasReason = (reason: string) => (answer: any) => answer?.result?.data?.reason === reason

/**
 * P1–P5, P8 and P12: one tokend (default settings, limits raised) and the bare express
 * baseline, both on the server core, on a fresh database. Every repetition runs each
 * load once in turn, so drift in the machine's other work touches all of them alike.
 */
export async function throughput(env: BenchEnv): Promise<ScenarioResult> {
  const { settings } = env
  env.log('P1–P5, P8: starting tokend and the bare express baseline')
  const database = await env.createDatabase()
  const dir = await mkdtemp(join(tmpdir(), 'tokend-bench-'))
  const servers: ServerProcess[] = []
  try {
    const keyFile = join(dir, 'bootstrap.key')
    const grpcPort = await freePort()
    const tokend = await startPinnedTokend({
      DATABASE_URL: database.url,
      PORT: String(await freePort()),
      TOKEND_GRPC_PORT: String(grpcPort),
      TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
      // P8 signs a user up to log in with.
      TOKEND_SIGNUP: 'open',
      ...BENCH_LIMITS,
    })
    servers.push(tokend)
    const bootstrapKey = (await readFile(keyFile, 'utf8')).trim()
    const admin = new Caller(tokend.url, bootstrapKey)

    const accountId = await createAccount(admin, 'bench')
    const issued = []
    for (let i = 0; i < settings.batchSize; i++) issued.push(await issueKey(admin, accountId, `bench-${i}`))
    const hitKey = (issued[0] as { token: string }).token
    env.log(`inserting ${settings.missKeys} keys for the cache-miss load`)
    const missKeys = await insertKeys(database.url, await createAccount(admin, 'bench-bulk'), settings.missKeys)
    // The baseline answers with exactly what tokend answers for the hit key.
    const hitAnswer = await call(admin, 'token.verify', { token: hitKey })
    const bare = await startBareServer(await freePort(), [[hitKey, hitAnswer]])
    servers.push(bare)

    const headers = { 'content-type': 'application/json', authorization: `Bearer ${bootstrapKey}` }
    const verifyUrl = `${tokend.url}/trpc/token.verify`
    const batchUrl = `${tokend.url}/trpc/${Array(settings.batchSize).fill('token.verify').join(',')}?batch=1`
    const batchBody = JSON.stringify(Object.fromEntries(issued.map((key, i) => [i, { token: key.token }])))
    const load = (name: string, server: ServerProcess, url: string, bodies: string[], expect: Load['expect']) =>
      ({
        name,
        server,
        url,
        headers,
        bodies,
        offset: 0,
        counted: server === tokend,
        expect,
        problems: [],
        runs: [],
      }) as Load
    const loads = {
      bare: load('bare', bare, `${bare.url}/verify`, [verifyBody(hitKey)], isValid),
      hit: load('hit', tokend, verifyUrl, [verifyBody(hitKey)], isValid),
      batch: load(
        'batch',
        tokend,
        batchUrl,
        [batchBody],
        (answer) => Array.isArray(answer) && answer.length === settings.batchSize && answer.every(isValid),
      ),
      miss: load(
        'miss',
        tokend,
        verifyUrl,
        missKeys.map((key) => verifyBody(key)),
        isValid,
      ),
      malformed: load(
        'malformed',
        tokend,
        verifyUrl,
        lookalikes(settings.floodKeys).map((key) => verifyBody(key)),
        hasReason('MALFORMED'),
      ),
      unknown: load(
        'unknown',
        tokend,
        verifyUrl,
        Array.from({ length: settings.floodKeys }, () => verifyBody(generateKey('tk', 'live'))),
        hasReason('NOT_FOUND'),
      ),
    }
    // P12: the same key checked at the edge, as a proxy or a gRPC service asks.
    const edgeScopes: string[] = []
    const grpcLoad = (name: string, method: 'Verify' | 'Check') =>
      ({
        ...load(name, tokend, '', [], () => true),
        grpc: { address: `127.0.0.1:${grpcPort}`, method, token: hitKey, scopes: edgeScopes, callerKey: bootstrapKey },
      }) as Load
    const edgeLoads = {
      grpcVerify: grpcLoad('gRPC Verify', 'Verify'),
      extAuthz: grpcLoad('ext_authz Check', 'Check'),
      forwardAuth: {
        ...load('forward-auth', tokend, `${tokend.url}/edge/auth`, [''], (answer) => answer === undefined),
        headers: { authorization: `Bearer ${hitKey}`, 'x-original-uri': '/v1/recordings' },
      } as Load,
    }
    const all = [...Object.values(loads), ...Object.values(edgeLoads)]

    for (const each of all) await checkAnswer(each)
    for (const each of all) {
      env.log(`warm-up: ${each.name}`)
      each.warmup = await measure(each, settings.warmupS, settings.connections)
    }
    for (let rep = 1; rep <= settings.repetitions; rep++) {
      for (const each of all) {
        env.log(`repetition ${rep}/${settings.repetitions}: ${each.name}`)
        each.runs.push(await measure(each, settings.durationS, settings.connections))
      }
    }

    const rps = (each: Load) => median(each.runs.map((run) => run.rps))
    const rates = (each: Load, times = 1) => each.runs.map((run) => run.rps * times)
    const ratio = (a: Load, b: Load, times = 1) => pairedRatio(rates(a, times), rates(b))
    const figures: Figure[] = []
    figures.push(
      ratioFigure(
        {
          id: 'P1',
          figure: 'cache-hit token.verify vs bare express Map route (requests/s)',
          target: '≥ 0.8×',
          min: 0.8,
        },
        ratio(loads.hit, loads.bare),
        problemsOf(loads.hit, loads.bare),
        [
          `hit ${round(rps(loads.hit), 0)} req/s, bare ${round(rps(loads.bare), 0)} req/s (medians)`,
          lookups(loads.hit),
        ],
      ),
    )
    figures.push(
      ratioFigure(
        {
          id: 'P2',
          figure: `batched verify (${settings.batchSize} per request), verifies/s vs bare requests/s`,
          target: '≥ 4×',
          min: 4,
        },
        ratio(loads.batch, loads.bare, settings.batchSize),
        problemsOf(loads.batch, loads.bare),
        [`${round(rps(loads.batch) * settings.batchSize, 0)} verifies/s in ${round(rps(loads.batch), 0)} req/s`],
      ),
    )
    figures.push(
      ratioFigure(
        { id: 'P3', figure: 'cache-miss verify (key in Postgres) vs cache-hit', target: '≥ 0.6×', min: 0.6 },
        ratio(loads.miss, loads.hit),
        problemsOf(loads.miss, loads.hit),
        [`${settings.missKeys} keys in Postgres, each request another one`, lookups(loads.miss)],
      ),
    )

    for (const [id, each] of [
      ['P12a', edgeLoads.grpcVerify],
      ['P12b', edgeLoads.extAuthz],
      ['P12c', edgeLoads.forwardAuth],
    ] as const) {
      figures.push(
        ratioFigure(
          { id, figure: `edge: ${each.name} (cache hit) vs P1's cache-hit token.verify`, target: '≥ 0.8×', min: 0.8 },
          ratio(each, loads.hit),
          problemsOf(each, loads.hit),
          [`${each.name} ${round(rps(each), 0)}/s, token.verify ${round(rps(loads.hit), 0)} req/s (medians)`],
        ),
      )
    }

    env.log('P4: proving the malformed flood makes no database lookups')
    const proof = await malformedProof(admin, accountId, loads.malformed, settings.durationS, settings.connections)
    figures.push(
      ratioFigure(
        {
          id: 'P4a',
          figure: 'flood of malformed keys vs cache-hit, with zero DB lookups',
          target: '≥ 0.9×, 0 lookups',
          min: 0.9,
        },
        ratio(loads.malformed, loads.hit),
        problemsOf(loads.malformed, loads.hit),
        [
          `${settings.floodKeys} distinct lookalikes (checksum fails)`,
          `database lookups: ${proof.lookups} during ${proof.requests} malformed verifies ` +
            `(tokend_cache_loads_total before and after, with a freshly cached caller key)`,
        ],
      ),
    )
    const p4a = figures.at(-1) as Figure
    if (proof.lookups !== 0 && p4a.verdict === 'pass') p4a.verdict = 'FAIL'
    p4a.shown += proof.lookups === 0 ? ', 0 lookups' : `, ${proof.lookups} lookups`
    figures.push(
      ratioFigure(
        { id: 'P4b', figure: 'flood of unknown well-formed keys vs cache-hit', target: '≥ 0.8×', min: 0.8 },
        ratio(loads.unknown, loads.hit),
        problemsOf(loads.unknown, loads.hit),
        [`${settings.floodKeys} distinct unknown keys (negative cache)`, lookups(loads.unknown)],
      ),
    )

    const rate = Math.max(1, Math.round(rps(loads.hit) / 2))
    const paced = { ...loads.hit, runs: [] as Run[] }
    for (let rep = 1; rep <= settings.repetitions; rep++) {
      env.log(`P5 repetition ${rep}/${settings.repetitions}: hits at ${rate} req/s`)
      paced.runs.push(await measure(paced, settings.durationS, settings.connections, rate))
    }
    const p99s = paced.runs.map((run) => run.latency.p99)
    const p5 = median(p99s)
    figures.push({
      id: 'P5',
      figure: 'cache-hit p99 at half the maximum rate',
      measured: p5,
      shown: `${p5.toFixed(2)} ms`,
      target: '≤ 2 ms',
      verdict: verdict(p5 <= 2, problemsOf(paced)),
      notes: [
        `${rate} req/s on a fixed schedule (open loop) over ${settings.connections} keep-alive connections`,
        `p50 ${median(paced.runs.map((run) => run.latency.p50)).toFixed(2)} ms, p99.9 ${median(paced.runs.map((run) => run.latency.p999)).toFixed(2)} ms (medians)`,
      ],
    })

    const p8 = await loginsBeside(env, tokend, paced, rate)
    figures.push(p8.figure)

    const series: Series[] = [
      ...all.map((each) => seriesOf(`${each.name} (${describe(each.name)})`, 'requests/s', each.runs, each.warmup)),
      seriesOf('hit p99 at half rate (P5)', 'ms', paced.runs, undefined, (run) => run.latency.p99),
      ...p8.series,
    ]
    return { figures, series }
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
    await database.drop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

const DESCRIPTIONS: Record<string, string> = {
  bare: 'bare express Map route',
  hit: 'cache-hit verify',
  batch: 'batched verify',
  miss: 'cache-miss verify',
  malformed: 'malformed flood',
  unknown: 'unknown-key flood',
}
const describe = (name: string) => DESCRIPTIONS[name] ?? name

function seriesOf(
  name: string,
  unit: string,
  runs: Run[],
  warmup?: Run,
  value: (run: Run) => number = (run) => run.rps,
): Series {
  return {
    name,
    unit,
    median: round(median(runs.map(value))),
    repetitions: runs.map((run) => round(value(run))),
    ...(warmup ? { warmup: round(value(warmup)) } : {}),
  }
}

/** Sends one request of the load and records a wrong answer as a problem. */
async function checkAnswer(load: Load): Promise<void> {
  if (load.grpc) return
  const response = await fetch(load.url, { method: 'POST', headers: load.headers, body: load.bodies[0] })
  const answer = await response.json().catch(() => undefined)
  if (response.status !== 200 || !load.expect(answer)) {
    load.problems.push(`${load.name} answered ${response.status} ${JSON.stringify(answer).slice(0, 200)}`)
  }
}

async function measure(load: Load, durationS: number, connections: number, pacedRate?: number): Promise<Run> {
  const before = load.counted ? await cacheCounters(load.server.url) : undefined
  const result = load.grpc
    ? await runGrpcLoad({ ...load.grpc, connections, durationS })
    : await runLoad({
        url: load.url,
        headers: load.headers,
        bodies: load.bodies,
        offset: load.offset,
        connections,
        durationS,
        ...(pacedRate ? { pacedRate } : {}),
      })
  load.offset += result.bodiesUsed
  if (!before) return result
  const after = await cacheCounters(load.server.url)
  return {
    ...result,
    cache: {
      hits: after.hits - before.hits,
      misses: after.misses - before.misses,
      loads: after.loads - before.loads,
      queries: after.queries - before.queries,
    },
  }
}

/** Wrong answers, failed requests and errors of the loads a figure compares. */
function problemsOf(...loads: Load[]): string[] {
  const problems = loads.flatMap((load) => load.problems)
  for (const load of loads) {
    const failed = load.runs.reduce((sum, run) => sum + run.non2xx + run.errors + run.timeouts, 0)
    if (failed > 0) problems.push(`${load.name}: ${failed} failed requests`)
  }
  return problems
}

/** Database lookups against answered verifies (requests still in flight when a run stops also count). */
function lookups(load: Load): string {
  const requests = load.runs.reduce((sum, run) => sum + run.requests, 0)
  const loads = load.runs.reduce((sum, run) => sum + (run.cache?.loads ?? 0), 0)
  const queries = load.runs.reduce((sum, run) => sum + (run.cache?.queries ?? 0), 0)
  return `database lookups: ${loads} for ${requests} answered verifies, in ${queries} queries`
}

/**
 * Runs the malformed flood with a caller key cached just before, so that not even
 * the caller's own cache entry can expire (60 s) during the run: then any database
 * lookup at all would be the flood's.
 */
async function malformedProof(
  admin: Caller,
  accountId: string,
  malformed: Load,
  durationS: number,
  connections: number,
) {
  const prober = await call<{ token: string }>(admin, 'token.issue', {
    name: 'bench-malformed-caller',
    environment: 'live',
    accountId,
    scopes: ['tokend:verify'],
  })
  const caller = new Caller(malformed.server.url, prober.token)
  await call(caller, 'token.verify', { token: 'not a key' })
  const url = malformed.server.url
  const loadsBefore = await metric(url, 'tokend_cache_loads_total')
  const run = await runLoad({
    url: malformed.url,
    headers: { ...malformed.headers, authorization: `Bearer ${prober.token}` },
    bodies: malformed.bodies,
    connections,
    durationS,
  })
  const lookups = (await metric(url, 'tokend_cache_loads_total')) - loadsBefore
  return { requests: run.requests, lookups }
}

/**
 * P8: the P5 hit load with and without 20 logins/s beside it, alternating. Reported as
 * n/a while tokend has no `auth.login` (another change adds it).
 */
async function loginsBeside(
  env: BenchEnv,
  tokend: ServerProcess,
  paced: Load,
  rate: number,
): Promise<{ figure: Figure; series: Series[] }> {
  const fields = {
    id: 'P8',
    figure: `cache-hit p99 while ${env.settings.loginsPerSecond} logins/s run vs without`,
    target: '≤ 2×',
  }
  const anonymous = new Caller(tokend.url)
  const probe = await anonymous.mutation('auth.login', { username: 'bench-probe', password: 'bench-probe-password' })
  if (probe.status === 404) {
    return { figure: { ...fields, measured: null, shown: '—', verdict: 'n/a (no auth.login)', notes: [] }, series: [] }
  }
  const user = {
    accountName: 'bench-login',
    username: `bench${Date.now().toString(36)}`,
    email: 'bench@example.com',
    password: `bench-${randomUUID()}`,
  }
  const signup = await anonymous.mutation('auth.signup', user)
  if (signup.status !== 200) {
    const why = `auth.signup answered ${signup.status}`
    return { figure: { ...fields, measured: null, shown: '—', verdict: `n/a (${why})`, notes: [] }, series: [] }
  }
  const login = { username: user.username, password: user.password }
  const without: Run[] = []
  const beside: Run[] = []
  const logins: Record<string, number> = {}
  const load = { ...paced, runs: [] as Run[] }
  for (let rep = 1; rep <= env.settings.repetitions; rep++) {
    env.log(`P8 repetition ${rep}/${env.settings.repetitions}: hits at ${rate} req/s, without and with logins`)
    without.push(await measure(load, env.settings.durationS, env.settings.connections, rate))
    const side = sideLoad(() => anonymous.mutation('auth.login', login), env.settings.loginsPerSecond)
    beside.push(await measure(load, env.settings.durationS, env.settings.connections, rate))
    for (const [status, count] of Object.entries(await side.stop())) logins[status] = (logins[status] ?? 0) + count
  }
  const p99s = (runs: Run[]) => runs.map((run) => run.latency.p99)
  const p99 = (runs: Run[]) => median(p99s(runs))
  const sent = Object.values(logins).reduce((sum, count) => sum + count, 0)
  const problems = problemsOf({ ...load, runs: [...without, ...beside] })
  if ((logins['200'] ?? 0) < 0.9 * sent) problems.push(`only ${logins['200'] ?? 0} of ${sent} logins succeeded`)
  return {
    figure: ratioFigure({ ...fields, max: 2 }, pairedRatio(p99s(beside), p99s(without)), problems, [
      `p99 ${p99(without).toFixed(2)} ms without, ${p99(beside).toFixed(2)} ms with logins (medians, ${rate} req/s)`,
      `logins by status: ${JSON.stringify(logins)}`,
    ]),
    series: [
      seriesOf('hit p99 without logins (P8)', 'ms', without, undefined, (run) => run.latency.p99),
      seriesOf('hit p99 with logins (P8)', 'ms', beside, undefined, (run) => run.latency.p99),
    ],
  }
}

/** Calls `send` `perSecond` times a second until stopped; counts answers by status. */
function sideLoad(send: () => Promise<{ status: number }>, perSecond: number) {
  const statuses: Record<string, number> = {}
  const pending = new Set<Promise<void>>()
  const timer = setInterval(() => {
    const request = send()
      .then((reply) => String(reply.status))
      .catch(() => 'error')
      .then((status) => {
        statuses[status] = (statuses[status] ?? 0) + 1
        pending.delete(request)
      })
    pending.add(request)
  }, 1000 / perSecond)
  return {
    async stop() {
      clearInterval(timer)
      await Promise.all(pending)
      return statuses
    },
  }
}
