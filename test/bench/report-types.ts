import type { Settings } from './settings.ts'

/** One line of SPEC §11's table as this run measured it. */
export interface Figure {
  id: string
  figure: string
  /** The number compared with the target (a ratio, ms or bytes); null when not measured. */
  measured: number | null
  /** `measured` as the table shows it, e.g. "0.84×". */
  shown: string
  target: string
  /** pass, FAIL, n/a (why) or invalid (why): the run reports, it does not gate. */
  verdict: string
  /** How the figure was obtained: its inputs and anything that qualifies it. */
  notes: string[]
}

/** The repetitions of one measured quantity (e.g. the bare route's requests/s). */
export interface Series {
  name: string
  unit: string
  median: number
  repetitions: number[]
  warmup?: number
}

/** What every scenario gets from the run. */
export interface BenchEnv {
  settings: Settings
  /** A fresh database on the run's cluster; `drop()` removes it. */
  createDatabase(): Promise<{ url: string; drop(): Promise<void> }>
  log(line: string): void
}

/** One row of the comparison table: a contender's repetitions of each measure. */
export interface Contender {
  name: string
  requestsPerS: number[]
  verifiesPerRequest: number
  cpuUsPerVerify: number[]
  /** Bytes allocated per request, where measured (P10). */
  bytesPerRequest: number[]
}

/** An SVG the report writes beside benchmarks.md and shows in it. */
export interface Chart {
  file: string
  svg: string
  alt: string
}

export interface ScenarioResult {
  figures: Figure[]
  series: Series[]
  comparison?: Contender[]
  charts?: Chart[]
}

export function verdict(passed: boolean, problems: readonly string[] = []): string {
  if (problems.length > 0) return `invalid (${problems.join('; ')})`
  return passed ? 'pass' : 'FAIL'
}

export function ratioFigure(
  fields: { id: string; figure: string; target: string; min?: number; max?: number },
  ratio: number,
  problems: readonly string[],
  notes: string[],
): Figure {
  const passed = (fields.min === undefined || ratio >= fields.min) && (fields.max === undefined || ratio <= fields.max)
  return {
    id: fields.id,
    figure: fields.figure,
    target: fields.target,
    measured: ratio,
    shown: `${ratio.toFixed(2)}×`,
    verdict: verdict(passed, problems),
    notes,
  }
}

/** The range of repetitions as "min–max", or the one value. */
export function spread(values: readonly number[], digits = 0): string {
  if (values.length === 0) return '—'
  const low = Math.min(...values).toFixed(digits)
  const high = Math.max(...values).toFixed(digits)
  return low === high ? low : `${low}–${high}`
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits
