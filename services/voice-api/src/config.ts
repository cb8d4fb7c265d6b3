import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { findRepoRoot } from '@tokend/devdb'
import { parseKey } from '@tokend/keys'
import { ConfigError, duration, integer, optionalString, type Problem, parseEnvironment } from '@tokend/settings'
import { z } from 'zod'

export { ConfigError }

/** Every environment variable voice-api reads; nothing else looks at `process.env`. */
export const configSchema = z.object({
  PORT: integer(0, 65_535).default(3100),
  HOST: z.string().min(1).default('0.0.0.0'),
  TOKEND_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .default('http://127.0.0.1:3000'),
  TOKEND_SERVICE_KEY: optionalString,
  TOKEND_SERVICE_KEY_FILE: optionalString,
  TOKEND_CACHE: z.enum(['on', 'off']).default('off'),
  TOKEND_TIMEOUT_MS: duration('ms', 50, 60_000).default(2_000),
  TOKEND_TOKEN_PREFIX: z
    .string()
    .regex(/^[a-z]{2,8}$/, 'must be 2–8 lowercase letters')
    .default('tk'),
  DATABASE_URL: optionalString.pipe(
    z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional(),
  ),
  DATABASE_POOL_SIZE: integer(1, 200).default(10),
  VOICE_API_DATA_DIR: z.string().min(1).default(resolve(findRepoRoot(), '.data/voice-api')),
  VOICE_API_EMBEDDED_PG_PORT: integer(1, 65_535).default(54_330),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export type Config = Omit<z.infer<typeof configSchema>, 'TOKEND_SERVICE_KEY' | 'TOKEND_SERVICE_KEY_FILE'> & {
  /** This service's key for tokend (scope `tokend:verify`), from the variable or the file. */
  TOKEND_SERVICE_KEY: string
}

/**
 * Parses the environment once. Every bad variable is reported at once (one line each,
 * never a secret); an unknown `VOICE_API_*` variable is a warning naming the closest one.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  warn: (message: string) => void = (message) => process.stderr.write(`voice-api: warning: ${message}\n`),
): Config {
  const problems: Problem[] = []
  let parsed: z.infer<typeof configSchema> | undefined
  try {
    parsed = parseEnvironment(configSchema, env, { prefixes: ['VOICE_API_'], warn })
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    problems.push(...error.problems)
  }
  const prefix = parsed?.TOKEND_TOKEN_PREFIX ?? 'tk'
  const key = serviceKey(env.TOKEND_SERVICE_KEY || undefined, env.TOKEND_SERVICE_KEY_FILE || undefined, prefix)
  if ('problem' in key) problems.push(key.problem)
  if (problems.length > 0 || !parsed || !('key' in key)) throw new ConfigError(problems)
  const { TOKEND_SERVICE_KEY: _given, TOKEND_SERVICE_KEY_FILE: _file, ...config } = parsed
  return { ...config, TOKEND_SERVICE_KEY: key.key }
}

function serviceKey(
  given: string | undefined,
  file: string | undefined,
  prefix: string,
): { key: string } | { problem: Problem } {
  const problem = (variable: string, message: string) => ({ problem: { variable, message } })
  if (given && file)
    return problem('TOKEND_SERVICE_KEY', 'give TOKEND_SERVICE_KEY or TOKEND_SERVICE_KEY_FILE, not both')
  let key = given
  let variable = 'TOKEND_SERVICE_KEY'
  if (file) {
    variable = 'TOKEND_SERVICE_KEY_FILE'
    try {
      key = readFileSync(file, 'utf8').trim()
    } catch (error) {
      return problem(variable, `cannot read ${file} (${(error as NodeJS.ErrnoException).code})`)
    }
  }
  if (!key)
    return problem('TOKEND_SERVICE_KEY', 'required (or TOKEND_SERVICE_KEY_FILE): a key with the tokend:verify scope')
  if (parseKey(key, prefix) === null) return problem(variable, `not a ${prefix}_ access key`)
  return { key }
}
