import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Caller, freePort } from '@tokend/testing'
import { type LoadJob, type LoadResult, runLoad } from './load.ts'
import { type ServerProcess, startPinnedTokend } from './processes.ts'
import { type BenchEnv, ratioFigure, round, type ScenarioResult } from './report-types.ts'
import { median, pairedRatio } from './stats.ts'
import { BENCH_LIMITS, call, createAccount, issueKey } from './tokend-api.ts'

const RATELIMIT = { name: 'bench', limit: 1_000_000_000, windowMs: 60_000 }
const SIDES = ['on', 'off'] as const
type Side = (typeof SIDES)[number]

/**
 * P7: cache-hit verify on a tokend recording `lastUsedAt` and applying a rate limit,
 * against one that does neither. Two processes on one fresh database (both on the
 * server core, loaded one at a time), measured in alternation.
 */
export async function lastUsedAndRateLimit(env: BenchEnv): Promise<ScenarioResult> {
  const { settings } = env
  env.log('P7: starting two tokend processes, lastUsedAt on and off')
  const database = await env.createDatabase()
  const dir = await mkdtemp(join(tmpdir(), 'tokend-bench-p7-'))
  const servers: ServerProcess[] = []
  try {
    const keyFile = join(dir, 'bootstrap.key')
    const start = async (track: boolean) => {
      const server = await startPinnedTokend({
        DATABASE_URL: database.url,
        PORT: String(await freePort()),
        TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
        TOKEND_TRACK_LAST_USED: String(track),
        ...BENCH_LIMITS,
      })
      servers.push(server)
      return server
    }
    // One after the other: the first bootstraps the database, the second finds it done.
    const on = await start(true)
    const off = await start(false)
    const bootstrapKey = (await readFile(keyFile, 'utf8')).trim()
    const admin = new Caller(on.url, bootstrapKey)
    const key = await issueKey(admin, await createAccount(admin, 'bench-p7'))
    const problems: string[] = []
    const sides = {
      on: { server: on, input: { token: key.token, ratelimit: RATELIMIT } },
      off: { server: off, input: { token: key.token } },
    }
    const job = (name: Side, durationS: number): LoadJob => ({
      url: `${sides[name].server.url}/trpc/token.verify`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bootstrapKey}` },
      bodies: [JSON.stringify(sides[name].input)],
      connections: settings.connections,
      durationS,
    })
    for (const name of SIDES) {
      const answer = await call(new Caller(sides[name].server.url, bootstrapKey), 'token.verify', sides[name].input)
      if (answer?.valid !== true) problems.push(`${name} answered ${JSON.stringify(answer)}`)
      env.log(`P7 warm-up: ${name}`)
      await runLoad(job(name, settings.warmupS))
    }
    const runs: Record<Side, LoadResult[]> = { on: [], off: [] }
    for (let rep = 1; rep <= settings.repetitions; rep++) {
      for (const name of SIDES) {
        env.log(`P7 repetition ${rep}/${settings.repetitions}: ${name}`)
        runs[name].push(await runLoad(job(name, settings.durationS)))
      }
    }
    for (const run of [...runs.on, ...runs.off]) {
      const failed = run.non2xx + run.errors + run.timeouts
      if (failed > 0) problems.push(`${failed} failed requests`)
    }
    const rps = (name: Side) => median(runs[name].map((run) => run.rps))
    return {
      figures: [
        ratioFigure(
          { id: 'P7', figure: 'verify with lastUsedAt and a rate limit on vs off', target: '≥ 0.8×', min: 0.8 },
          pairedRatio(
            runs.on.map((run) => run.rps),
            runs.off.map((run) => run.rps),
          ),
          problems,
          [
            `on: TOKEND_TRACK_LAST_USED=true and ratelimit ${JSON.stringify(RATELIMIT)}; off: TOKEND_TRACK_LAST_USED=false, no ratelimit`,
            `on ${round(rps('on'), 0)} req/s, off ${round(rps('off'), 0)} req/s (medians)`,
          ],
        ),
      ],
      series: SIDES.map((name) => ({
        name: `verify, lastUsedAt and rate limit ${name} (P7)`,
        unit: 'requests/s',
        median: round(rps(name)),
        repetitions: runs[name].map((run) => round(run.rps)),
      })),
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
    await database.drop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}
