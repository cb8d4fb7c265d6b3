import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from '@tokend/testing'
import pg from 'pg'
import { canPin } from './processes.ts'
import { type Chart, type Contender, type Figure, type Series, spread } from './report-types.ts'
import type { Settings } from './settings.ts'
import { median } from './stats.ts'

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  postgres: string
  date: string
  /** 1-minute load average at the start and the end: how busy the machine was otherwise. */
  loadAverage: { start: number; end?: number }
  pinning: string
  /** How tokend was run: the compiled bundle, or its sources through tsx. */
  tokend?: string
}

export interface BenchReport {
  mode: 'quick' | 'full'
  machine: Machine
  settings: Settings
  figures: Figure[]
  series: Series[]
  comparison: Contender[]
  charts: Chart[]
}

export async function describeMachine(databaseUrl: string): Promise<Machine> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  let postgres: string
  try {
    postgres = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? '?'
  } finally {
    await client.end()
  }
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres,
    date: new Date().toISOString(),
    loadAverage: { start: round1(loadavg()[0] ?? 0) },
    pinning: canPin
      ? 'servers (tokend, the baseline, Postgres) on core 0; load generator and measuring client on core 1 (taskset)'
      : 'none (taskset or a second core missing): figures are rougher',
  }
}

const round1 = (value: number) => Math.round(value * 10) / 10

/** The figure table as fixed-width text for the terminal. */
export function textTable(figures: Figure[]): string {
  const rows = [['#', 'figure', 'measured', 'target', 'verdict'], ...figures.map(cells)]
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? []
  const line = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ')
  return [line(rows[0] ?? []), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.slice(1).map(line)].join(
    '\n',
  )
}

const cells = (figure: Figure) => [figure.id, figure.figure, figure.shown, figure.target, figure.verdict]

export function markdown(report: BenchReport): string {
  const { machine, settings } = report
  const cell = (text: string) => text.replaceAll('|', '\\|')
  const lines = [
    '# Benchmarks',
    '',
    `SPEC §11's performance targets, measured by \`pnpm bench${report.mode === 'quick' ? ' --quick' : ''}\`` +
      ` on ${machine.date.slice(0, 10)}. Every figure is a ratio within this one run against its named`,
    'baseline (or an absolute latency / size where the target is one); the run reports, it does not gate.',
    'Where the time goes — the profiles behind these figures, and what bounds those below target — is in',
    '[performance.md](performance.md).',
    '',
  ]
  if (report.mode === 'quick') {
    lines.push(
      `> **Quick run** (\`--quick\`): ${settings.repetitions} repetition of ${settings.durationS} s per load, ` +
        `${settings.missKeys} keys for the miss load, ${settings.revocations} revocations. A smoke test of the ` +
        'harness: its figures are noisy and not worth comparing. Regenerate with `pnpm bench` on a quiet machine.',
      '',
    )
  }
  const busiest = Math.max(machine.loadAverage.start, machine.loadAverage.end ?? 0)
  // The run itself keeps about two processes busy (a server and a load); more is other work.
  if (busiest > Math.max(machine.cores, 2) + 0.5) {
    lines.push(
      `> **Busy machine**: the load average reached ${busiest} on ${machine.cores} cores during the run, so other ` +
        'work competed with the pinned processes for their cores. Treat these figures as noise.',
      '',
    )
  }
  lines.push('| # | figure | measured | target | verdict |', '|---|---|---|---|---|')
  for (const figure of report.figures) lines.push(`| ${cells(figure).map(cell).join(' | ')} |`)
  if (report.comparison.length > 0) lines.push('', ...comparisonTable(report.comparison))
  for (const chart of report.charts) lines.push('', `![${chart.alt}](${chart.file})`)
  lines.push('', '## How each figure was obtained', '')
  for (const figure of report.figures) {
    lines.push(`- **${figure.id}** ${figure.figure}: ${figure.shown}`)
    for (const note of figure.notes) lines.push(`  - ${note}`)
  }
  lines.push(
    '',
    '## Raw measurements',
    '',
    `Medians of ${settings.repetitions} repetition(s) of ${settings.durationS} s after a ${settings.warmupS} s ` +
      `warm-up, ${settings.connections} keep-alive connections. Each repetition runs every load once in turn, ` +
      "and each ratio above is the median of the repetitions' own ratios, so that a slow spell of the machine " +
      'touches both sides of a pair.',
    '',
    '| measurement | unit | median | repetitions | warm-up |',
    '|---|---|---|---|---|',
  )
  for (const series of report.series) {
    lines.push(
      `| ${cell(series.name)} | ${series.unit} | ${series.median} | ${series.repetitions.join(', ')} | ${series.warmup ?? ''} |`,
    )
  }
  lines.push(
    '',
    '## Machine',
    '',
    `- CPU: ${machine.cpu}, ${machine.cores} cores; memory ${machine.memoryGiB} GiB`,
    `- Node ${machine.node}, Postgres ${machine.postgres}`,
    `- pinning: ${machine.pinning}`,
    `- tokend: ${machine.tokend ?? 'src/main.ts through tsx'}`,
    `- load average (1 min) at start ${machine.loadAverage.start}, at end ${machine.loadAverage.end ?? '?'}: ` +
      'other work on the machine shows here',
    `- date: ${machine.date}`,
    '',
    'The numbers are also in `docs/benchmarks.json`.',
    '',
  )
  return lines.join('\n')
}

/**
 * The contenders side by side: medians with the range of the repetitions, so that
 * what the machine's noise can flip is in sight.
 */
export function comparisonTable(contenders: Contender[]): string[] {
  const cell = (values: number[], digits = 0) => {
    if (values.length === 0) return '—'
    const range = spread(values, digits)
    return range.includes('–') ? `${median(values).toFixed(digits)} (${range})` : range
  }
  return [
    '## Comparison (cache-hit verify, one run)',
    '',
    'Requests/s at saturation, CPU µs of the server process per verify (utime + stime over a fixed number of ' +
      'requests) and bytes allocated per request; median (min–max) of the repetitions. Postgres time is not in ' +
      "a contender's CPU figure.",
    '',
    '| contender | requests/s | verifies/s | CPU µs per verify | bytes allocated per request |',
    '|---|---|---|---|---|',
    ...contenders.map(
      (each) =>
        `| ${each.name} | ${cell(each.requestsPerS)} | ${(median(each.requestsPerS) * each.verifiesPerRequest).toFixed(0)} | ` +
        `${cell(each.cpuUsPerVerify, 1)} | ${cell(each.bytesPerRequest)} |`,
    ),
  ]
}

/** Writes both files laid out as the repository's formatter wants them, so `pnpm lint` stays green. */
export async function writeReport(report: BenchReport, jsonPath: string, markdownPath: string): Promise<void> {
  await mkdir(dirname(jsonPath), { recursive: true })
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`)
  await writeFile(markdownPath, markdown(report))
  for (const chart of report.charts) await writeFile(join(dirname(markdownPath), chart.file), chart.svg)
  await promisify(execFile)(join(repoRoot, 'node_modules/.bin/biome'), ['format', '--write', jsonPath, markdownPath])
}
