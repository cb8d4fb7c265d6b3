import { loadavg } from 'node:os'
import { join } from 'node:path'
import { createTestDatabase, type RunningPostgres, repoRoot, startEmbeddedPostgres } from '@tokend/testing'
import { credits } from './credits.ts'
import { hotPath } from './hotpath.ts'
import { lastUsedAndRateLimit } from './lastused.ts'
import { memoryPerEntry } from './memory.ts'
import {
  buildTokend,
  CLIENT_CORE,
  FROM_SOURCE,
  killChildren,
  pinPostgres,
  pinProcess,
  SERVER_CORE,
} from './processes.ts'
import { type BenchReport, describeMachine, textTable, writeReport } from './report.ts'
import type { BenchEnv, Chart, Contender, Figure, Series } from './report-types.ts'
import { revocation } from './revocation.ts'
import { FULL, QUICK, type Settings } from './settings.ts'
import { throughput } from './throughput.ts'

/**
 * `pnpm bench [--quick] [--repetitions=N] [--duration=S] [--only=hotpath,throughput,...] [--source]`:
 * SPEC §11's scenarios against real tokend processes on an
 * embedded Postgres cluster (or the cluster of DATABASE_URL, on which it creates and
 * drops its own databases). Prints the table and writes docs/benchmarks.{json,md}.
 * Exits 0 whatever the verdicts; non-zero only when the harness itself fails.
 * `--only <scenario>` (e.g. `--only credits`, or `--only=hotpath,throughput`) runs those
 * scenarios and prints their table without writing the report.
 */
const option = (name: string) =>
  process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? undefined
const settings: Settings = {
  ...(process.argv.includes('--quick') ? QUICK : FULL),
  // Shorter runs on a shared machine; the report says how long each one was.
  ...(option('repetitions') ? { repetitions: Number(option('repetitions')) } : {}),
  ...(option('duration') ? { durationS: Number(option('duration')) } : {}),
}
const SCENARIOS = {
  hotpath: hotPath,
  throughput,
  lastused: lastUsedAndRateLimit,
  credits,
  revocation,
  memory: memoryPerEntry,
}
// `--only name` or `--only=a,b`.
const onlyAt = process.argv.indexOf('--only')
const only = (onlyAt === -1 ? option('only') : process.argv[onlyAt + 1])?.split(',')
for (const name of only ?? []) {
  if (!(name in SCENARIOS)) throw new Error(`--only takes some of ${Object.keys(SCENARIOS).join(', ')}`)
}
const began = performance.now()
const log = (line: string) =>
  process.stdout.write(`bench ${((performance.now() - began) / 1000).toFixed(0).padStart(4)} s: ${line}\n`)

let postgres: (RunningPostgres & { destroy(): Promise<void> }) | undefined
let interrupted = false
let stopped: Promise<void> | undefined
/** Kills every child process, then removes the embedded cluster; once, however it is reached. */
function stopEverything(): Promise<void> {
  killChildren()
  stopped ??= postgres?.destroy().catch(() => {}) ?? Promise.resolve()
  return stopped
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    log(`${signal}: stopping every process this run started`)
    void stopEverything().finally(() => process.exit(130))
  })
}

async function main(): Promise<void> {
  pinProcess(process.pid, CLIENT_CORE)
  if (!FROM_SOURCE) log('building tokend (dist/main.js, as pnpm start runs it)')
  buildTokend()
  let adminUrl = process.env.DATABASE_URL
  if (!adminUrl) {
    log('starting an embedded Postgres cluster')
    postgres = await startEmbeddedPostgres()
    adminUrl = postgres.url
  }
  const machine = await describeMachine(adminUrl)
  machine.tokend = FROM_SOURCE
    ? 'src/main.ts through tsx (--source)'
    : 'dist/main.js, the compiled bundle `pnpm start` and the image run'
  // Only a cluster of our own is moved to the server core; a given one is left alone.
  if (!postgres || !(await pinPostgres(adminUrl, SERVER_CORE))) machine.pinning += '; Postgres not pinned'
  const clusterUrl = adminUrl
  const env: BenchEnv = { settings, createDatabase: () => createTestDatabase(clusterUrl), log }

  const figures: Figure[] = []
  const series: Series[] = []
  const comparison: Contender[] = []
  const charts: Chart[] = []
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (only && !only.includes(name)) continue
    const result = await scenario(env)
    figures.push(...result.figures)
    series.push(...result.series)
    comparison.push(...(result.comparison ?? []))
    charts.push(...(result.charts ?? []))
  }
  figures.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))
  machine.loadAverage.end = Math.round((loadavg()[0] ?? 0) * 10) / 10

  const report: BenchReport = {
    mode: settings.quick ? 'quick' : 'full',
    machine,
    settings,
    figures,
    series,
    comparison,
    charts,
  }
  process.stdout.write(`\n${textTable(figures)}\n\n`)
  if (only !== undefined) return
  await writeReport(report, join(repoRoot, 'docs/benchmarks.json'), join(repoRoot, 'docs/benchmarks.md'))
  log('wrote docs/benchmarks.md and docs/benchmarks.json')
}

let exitCode = 0
try {
  await main()
} catch (error) {
  exitCode = 1
  if (!interrupted) {
    process.stderr.write(
      `bench: the harness failed: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`,
    )
  }
} finally {
  await stopEverything()
}
process.exit(interrupted ? 130 : exitCode)
