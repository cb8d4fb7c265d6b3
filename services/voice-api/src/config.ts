import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { findRepoRoot } from '@tokend/devdb'
import { parseKey } from '@tokend/keys'
import { z } from 'zod'

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === '' ? undefined : value))

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** Every environment variable voice-api reads; nothing else looks at `process.env`. */
export const configSchema = z.object({
  PORT: integer(0, 65_535).default(3100),
  HOST: z.string().min(1).default('0.0.0.0'),
  TOKEND_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  TOKEND_SERVICE_KEY: optionalString,
  TOKEND_SERVICE_KEY_FILE: optionalString,
  TOKEND_CACHE: z.enum(['on', 'off']).default('off'),
  TOKEND_TIMEOUT_MS: integer(50, 60_000).default(2_000),
  TOKEND_TOKEN_PREFIX: z
    .string()
    .regex(/^[a-z]{2,8}$/, 'must be 2–8 lowercase letters')
    .default('tk'),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_POOL_SIZE: integer(1, 200).default(10),
  VOICE_API_DATA_DIR: z.string().min(1).default(resolve(findRepoRoot(), '.data/voice-api')),
  VOICE_API_EMBEDDED_PG_PORT: integer(1, 65_535).default(54_330),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export type Config = Omit<z.infer<typeof configSchema>, 'TOKEND_SERVICE_KEY' | 'TOKEND_SERVICE_KEY_FILE'> & {
  /** This service's key for tokend (scope `tokend:verify`), from the variable or the file. */
  TOKEND_SERVICE_KEY: string
}

export class ConfigError extends Error {}

/** Parses the environment once; the error names the first bad variable on one line, never its secret. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const name = String(issue?.path[0] ?? 'environment')
    throw new ConfigError(`invalid configuration: ${name}: ${issue?.message ?? 'invalid value'}`)
  }
  const { TOKEND_SERVICE_KEY: given, TOKEND_SERVICE_KEY_FILE: file, ...config } = parsed.data
  if (given && file)
    throw new ConfigError('invalid configuration: give TOKEND_SERVICE_KEY or TOKEND_SERVICE_KEY_FILE, not both')
  let key = given
  let name = 'TOKEND_SERVICE_KEY'
  if (file) {
    name = 'TOKEND_SERVICE_KEY_FILE'
    try {
      key = readFileSync(file, 'utf8').trim()
    } catch (error) {
      throw new ConfigError(
        `invalid configuration: ${name}: cannot read ${file} (${(error as NodeJS.ErrnoException).code})`,
      )
    }
  }
  if (!key) throw new ConfigError('invalid configuration: TOKEND_SERVICE_KEY: required (or TOKEND_SERVICE_KEY_FILE)')
  if (parseKey(key, config.TOKEND_TOKEN_PREFIX) === null) {
    throw new ConfigError(`invalid configuration: ${name}: not a ${config.TOKEND_TOKEN_PREFIX}_ access key`)
  }
  return { ...config, TOKEND_SERVICE_KEY: key }
}
