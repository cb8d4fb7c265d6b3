import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Caller, freePort } from '@tokend/testing'
import { type LoadJob, type LoadResult, runLoad } from './load.ts'
import { type ServerProcess, startPinnedTokend } from './processes.ts'
import { type BenchEnv, ratioFigure, round, type ScenarioResult } from './report-types.ts'
import { median, pairedRatio } from './stats.ts'
import { BENCH_LIMITS, call, createAccount } from './tokend-api.ts'

const SIDES = ['credits', 'plain'] as const
type Side = (typeof SIDES)[number]
/** Far more than a run spends: the key never runs out, so every verify is a spend. */
const BUDGET = 1_000_000_000_000

/**
 * C1 (SPEC §14, issue 16): cache-hit verify of a key with usage credits (each verify
 * spends one from the replica's lease) against a key without, on one tokend process,
 * measured in alternation. Target ≥ 0.5×.
 */
export async function credits(env: BenchEnv): Promise<ScenarioResult> {
  const { settings } = env
  env.log('C1: starting tokend for verify with credits vs without')
  const database = await env.createDatabase()
  const dir = await mkdtemp(join(tmpdir(), 'tokend-bench-c1-'))
  let server: ServerProcess | undefined
  try {
    const keyFile = join(dir, 'bootstrap.key')
    server = await startPinnedTokend({
      DATABASE_URL: database.url,
      PORT: String(await freePort()),
      TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
      ...BENCH_LIMITS,
    })
    const bootstrapKey = (await readFile(keyFile, 'utf8')).trim()
    const admin = new Caller(server.url, bootstrapKey)
    const accountId = await createAccount(admin, 'bench-c1')
    const issue = (extra: object) =>
      call<{ token: string }>(admin, 'token.issue', { name: 'bench', environment: 'live', accountId, ...extra })
    const tokens: Record<Side, string> = {
      credits: (await issue({ credits: { remaining: BUDGET } })).token,
      plain: (await issue({})).token,
    }
    const problems: string[] = []
    const job = (name: Side, durationS: number): LoadJob => ({
      url: `${(server as ServerProcess).url}/trpc/token.verify`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bootstrapKey}` },
      bodies: [JSON.stringify({ token: tokens[name] })],
      connections: settings.connections,
      durationS,
    })
    for (const name of SIDES) {
      const answer = await call(admin, 'token.verify', { token: tokens[name] })
      if (answer?.valid !== true) problems.push(`${name} answered ${JSON.stringify(answer)}`)
      if (name === 'credits' && typeof answer?.remaining !== 'number') problems.push('no remaining with credits')
      env.log(`C1 warm-up: ${name}`)
      await runLoad(job(name, settings.warmupS))
    }
    const runs: Record<Side, LoadResult[]> = { credits: [], plain: [] }
    for (let rep = 1; rep <= settings.repetitions; rep++) {
      for (const name of SIDES) {
        env.log(`C1 repetition ${rep}/${settings.repetitions}: ${name}`)
        runs[name].push(await runLoad(job(name, settings.durationS)))
      }
    }
    for (const run of [...runs.credits, ...runs.plain]) {
      const failed = run.non2xx + run.errors + run.timeouts
      if (failed > 0) problems.push(`${failed} failed requests`)
    }
    const after = await call(admin, 'token.verify', { token: tokens.credits, cost: 0 })
    const spent = BUDGET - (after?.remaining ?? BUDGET)
    const rps = (name: Side) => median(runs[name].map((run) => run.rps))
    return {
      figures: [
        ratioFigure(
          { id: 'C1', figure: 'cache-hit verify of a key with usage credits vs without', target: '≥ 0.5×', min: 0.5 },
          pairedRatio(
            runs.credits.map((run) => run.rps),
            runs.plain.map((run) => run.rps),
          ),
          problems,
          [
            `credits ${round(rps('credits'), 0)} req/s, without ${round(rps('plain'), 0)} req/s (medians)`,
            `${spent} credits spent (leased in blocks of up to 1000 from Postgres)`,
          ],
        ),
      ],
      series: SIDES.map((name) => ({
        name: `verify, key ${name === 'credits' ? 'with' : 'without'} usage credits (C1)`,
        unit: 'requests/s',
        median: round(rps(name)),
        repetitions: runs[name].map((run) => round(run.rps)),
      })),
    }
  } finally {
    await server?.stop()
    await database.drop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}
