import { z } from 'zod'

/** An empty variable counts as unset. */
export const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === '' ? undefined : value))

/** A whole number from a variable, within bounds. */
export const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))

const UNITS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
type Unit = keyof typeof UNITS

function show(value: number, unit: Unit): string {
  const ms = value * UNITS[unit]
  for (const candidate of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNITS[candidate] && ms % UNITS[candidate] === 0) return `${ms / UNITS[candidate]}${candidate}`
  }
  return `${ms}ms`
}

/**
 * A duration given with a unit (`250ms`, `90s`, `15m`, `12h`, `7d`) or as a plain number
 * in the variable's own unit (the `_MS`, `_S` or `_DAYS` of its name), read into that unit.
 * Bounds are in that unit too.
 */
export const duration = (unit: Unit, min: number, max: number) =>
  z
    .string()
    .trim()
    .transform((text, context) => {
      const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text)
      if (!match) {
        context.addIssue({
          code: 'custom',
          message: `must be a duration such as 90s, 15m or 7d, or a number of ${unit}`,
        })
        return z.NEVER
      }
      const value = (Number(match[1]) * UNITS[(match[2] as Unit | undefined) ?? unit]) / UNITS[unit]
      if (!Number.isInteger(value)) {
        context.addIssue({ code: 'custom', message: `must be a whole number of ${unit}` })
        return z.NEVER
      }
      if (value < min || value > max) {
        context.addIssue({ code: 'custom', message: `must be between ${show(min, unit)} and ${show(max, unit)}` })
        return z.NEVER
      }
      return value
    })

export interface Problem {
  variable: string
  message: string
}

/**
 * A configuration that cannot start: every bad variable, one line each. The message
 * names the variables and what they must be, never their values (one may be a secret).
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor(readonly problems: Problem[]) {
    const lines = problems.map((problem) => `${problem.variable}: ${problem.message}`)
    super(
      lines.length === 1
        ? `invalid configuration: ${lines[0]}`
        : `invalid configuration, ${lines.length} variables:\n${lines.map((line) => `  ${line}`).join('\n')}`,
    )
  }
}

/**
 * Parses the environment with `schema`, reporting every bad variable at once, and warns
 * (through `warn`) about variables that look like settings (`prefixes`) but are read by
 * nothing, naming the closest known one.
 */
export function parseEnvironment<Schema extends z.ZodObject>(
  schema: Schema,
  env: Record<string, string | undefined>,
  options: { prefixes: string[]; alsoKnown?: string[]; warn: (message: string) => void },
): z.infer<Schema> {
  const known = [...Object.keys(schema.shape), ...(options.alsoKnown ?? [])]
  for (const name of Object.keys(env).sort()) {
    if (!options.prefixes.some((prefix) => name.startsWith(prefix)) || known.includes(name)) continue
    const suggestion = closest(name, Object.keys(schema.shape))
    options.warn(
      `${name} is not a setting of this service${suggestion ? `; did you mean ${suggestion}?` : ''} (ignored)`,
    )
  }
  // An empty variable counts as unset, so it takes the default.
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''))
  const parsed = schema.safeParse(given)
  if (parsed.success) return parsed.data
  const problems = new Map<string, string>()
  for (const issue of parsed.error.issues) {
    const variable = String(issue.path[0] ?? 'environment')
    if (!problems.has(variable)) problems.set(variable, describe(issue))
  }
  throw new ConfigError([...problems].map(([variable, message]) => ({ variable, message })))
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value') return `must be one of ${issue.values.map(String).join(', ')}`
  if (issue.code === 'too_small' && issue.origin === 'number') return `must be at least ${issue.minimum}`
  if (issue.code === 'too_big' && issue.origin === 'number') return `must be at most ${issue.maximum}`
  return issue.message
}

/** The name among `names` nearest to `name` (edit distance). */
export function closest(name: string, names: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined
  for (const candidate of names) {
    const distance = editDistance(name, candidate)
    if (!best || distance < best.distance) best = { name: candidate, distance }
  }
  return best?.name
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      )
    }
    previous = current
  }
  return previous[b.length] as number
}
