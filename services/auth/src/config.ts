import { resolve } from 'node:path'
import { findRepoRoot } from '@tokend/devdb'
import { z } from 'zod'

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === '' ? undefined : value))

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/** Every environment variable tokend reads; nothing else looks at `process.env`. */
export const configSchema = z.object({
  PORT: integer(0, 65_535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  TOKEND_GRPC_PORT: integer(0, 65_535).default(3001),
  /**
   * Proxies whose X-Forwarded-For is believed (express `trust proxy`): `false` (none: the
   * socket's address is the client's), a hop count, or addresses, e.g. `loopback, uniquelocal`.
   */
  TOKEND_TRUST_PROXY: z.string().min(1).default('false'),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_POOL_SIZE: integer(1, 200).default(10),
  TOKEND_DATA_DIR: z.string().min(1).default(resolve(findRepoRoot(), '.data/tokend')),
  TOKEND_EMBEDDED_PG_PORT: integer(1, 65_535).default(54_329),
  TOKEND_TOKEN_PREFIX: z
    .string()
    .regex(/^[a-z]{2,8}$/, 'must be 2–8 lowercase letters')
    .default('tk'),
  TOKEND_CACHE_MAX_ENTRIES: integer(1, 10_000_000).default(100_000),
  TOKEND_CACHE_TTL_MS: integer(0, 60_000).default(60_000),
  TOKEND_NEGATIVE_CACHE_TTL_MS: integer(0, 60_000).default(5_000),
  TOKEND_BOOTSTRAP_TOKEN_FILE: optionalString,
  TOKEND_MAX_ACTIVE_KEYS: integer(1, 1_000_000).default(20),
  TOKEND_KEY_CREATIONS_PER_MINUTE: integer(1, 1_000_000).default(10),
  /** The "minute" of the limit above; only tests shorten it. */
  TOKEND_KEY_CREATION_WINDOW_MS: integer(1_000, 3_600_000).default(60_000),
  TOKEND_LAST_USED_FLUSH_MS: integer(100, 5_000).default(5_000),
  /** Switch for benchmarks (SPEC §11 P7 measures lastUsedAt on against off). */
  TOKEND_TRACK_LAST_USED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
  TOKEND_REMINDER_INTERVAL_MS: integer(1_000, 86_400_000).default(60_000),
  SMTP_URL: optionalString.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
  TOKEND_MAIL_FROM: z.string().min(3).default('tokend <tokend@localhost>'),
  TOKEND_LISTENER_HEARTBEAT_MS: integer(100, 10_000).default(1_000),
  TOKEND_LISTENER_TIMEOUT_MS: integer(100, 10_000).default(2_000),
  TOKEND_SIGNUP: z.enum(['open', 'closed']).default('closed'),
  TOKEND_TRIAL_KEY_DAYS: integer(15, 90).default(30),
  TOKEND_JWT_ISSUER: z.string().min(1).max(200).default('tokend'),
  TOKEND_JWT_AUDIENCE: z.string().min(1).max(200).default('tokend'),
  // OWASP's argon2id minimum (m = 19 MiB, t = 2, p = 1) is the floor; only stronger is accepted.
  TOKEND_ARGON2_MEMORY_KIB: integer(19_456, 1_048_576).default(19_456),
  TOKEND_ARGON2_TIME_COST: integer(2, 20).default(2),
  TOKEND_PASSWORD_HASH_CONCURRENCY: integer(1, 16).default(2),
  TOKEND_LOGIN_WINDOW_S: integer(1, 86_400).default(900),
  TOKEND_LOGIN_MAX_PER_PAIR: integer(1, 10_000).default(10),
  TOKEND_LOGIN_MAX_PER_USERNAME: integer(1, 100_000).default(100),
  TOKEND_LOGIN_MAX_PER_ADDRESS: integer(1, 100_000).default(100),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export type Config = z.infer<typeof configSchema>

export class ConfigError extends Error {}

/** Parses the environment once; the error names the first bad variable on one line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const name = String(issue?.path[0] ?? 'environment')
  throw new ConfigError(`invalid configuration: ${name}: ${issue?.message ?? 'invalid value'}`)
}
