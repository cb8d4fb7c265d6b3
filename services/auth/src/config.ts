import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { findRepoRoot } from '@tokend/devdb'
import { ConfigError, duration, integer, optionalString, parseEnvironment } from '@tokend/settings'
import { z } from 'zod'

export { ConfigError }

/**
 * Every environment variable of tokend's production configuration (the README's table);
 * nothing else looks at `process.env`. Durations take units (`90s`, `15m`, `7d`) or a plain
 * number in the unit their name ends with.
 */
export const configSchema = z.object({
  PORT: integer(0, 65_535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  TOKEND_GRPC_PORT: integer(0, 65_535).default(3001),
  /**
   * Proxies whose X-Forwarded-For is believed (express `trust proxy`), e.g. `loopback` or
   * `uniquelocal` behind a proxy on the same host or network. `none` (the default) believes
   * no one: the address is the socket's, and a forged header buys no fresh budget.
   */
  TOKEND_TRUST_PROXY: z
    .string()
    .regex(/^[\w.:/]+(\s*,\s*[\w.:/]+)*$/, 'must be none, or a comma-separated list such as loopback, uniquelocal')
    .default('none')
    .transform((value) => (value === 'none' ? false : value)),
  DATABASE_URL: optionalString.pipe(
    z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional(),
  ),
  DATABASE_POOL_SIZE: integer(1, 200).default(10),
  TOKEND_DATA_DIR: z.string().min(1).default(resolve(findRepoRoot(), '.data/tokend')),
  TOKEND_EMBEDDED_PG_PORT: integer(1, 65_535).default(54_329),
  TOKEND_TOKEN_PREFIX: z
    .string()
    .regex(/^[a-z]{2,8}$/, 'must be 2–8 lowercase letters')
    .default('tk'),
  TOKEND_CACHE_MAX_ENTRIES: integer(1, 10_000_000).default(100_000),
  TOKEND_CACHE_TTL_MS: duration('ms', 0, 60_000).default(60_000),
  TOKEND_NEGATIVE_CACHE_TTL_MS: duration('ms', 0, 60_000).default(5_000),
  TOKEND_BOOTSTRAP_TOKEN_FILE: optionalString,
  TOKEND_MAX_ACTIVE_KEYS: integer(1, 1_000_000).default(20),
  TOKEND_KEY_CREATIONS_PER_MINUTE: integer(1, 1_000_000).default(10),
  TOKEND_LAST_USED_FLUSH_MS: duration('ms', 100, 5_000).default(5_000),
  TOKEND_REMINDER_INTERVAL_MS: duration('ms', 1_000, 86_400_000).default(60_000),
  /**
   * The forgotten-key policy: keys unused this long (e.g. `90d`) are disabled, after their
   * account's admins were mailed `TOKEND_DISABLE_UNUSED_WARNING` before. Unset: off.
   */
  TOKEND_DISABLE_UNUSED_AFTER: optionalString.pipe(duration('d', 1, 36_500).optional()),
  TOKEND_DISABLE_UNUSED_WARNING: duration('d', 1, 365).default(7),
  SMTP_URL: optionalString.pipe(
    z.url({ protocol: /^smtps?$/, error: 'must be an smtp:// or smtps:// URL' }).optional(),
  ),
  TOKEND_MAIL_FROM: z.string().min(3).default('tokend <tokend@localhost>'),
  TOKEND_LISTENER_HEARTBEAT_MS: duration('ms', 100, 10_000).default(1_000),
  TOKEND_LISTENER_TIMEOUT_MS: duration('ms', 100, 10_000).default(2_000),
  TOKEND_SIGNUP: z.enum(['open', 'closed']).default('closed'),
  TOKEND_TRIAL_KEY_DAYS: duration('d', 15, 90).default(30),
  TOKEND_JWT_ISSUER: z.string().min(1).max(200).default('tokend'),
  TOKEND_JWT_AUDIENCE: z.string().min(1).max(200).default('tokend'),
  // OWASP's argon2id minimum (m = 19 MiB, t = 2, p = 1) is the floor; only stronger is accepted.
  TOKEND_ARGON2_MEMORY_KIB: integer(19_456, 1_048_576).default(19_456),
  TOKEND_ARGON2_TIME_COST: integer(2, 20).default(2),
  TOKEND_PASSWORD_HASH_CONCURRENCY: integer(1, 16).default(2),
  TOKEND_LOGIN_WINDOW_S: duration('s', 1, 86_400).default(900),
  TOKEND_LOGIN_MAX_PER_PAIR: integer(1, 10_000).default(10),
  TOKEND_LOGIN_MAX_PER_USERNAME: integer(1, 100_000).default(100),
  TOKEND_LOGIN_MAX_PER_ADDRESS: integer(1, 100_000).default(100),
  /**
   * Worker processes (node:cluster) serving the same HTTP and gRPC ports, each with its own
   * cache and change listener; `auto` is one per core (cluster/primary.ts).
   */
  TOKEND_WORKERS: z
    .string()
    .trim()
    .regex(/^(auto|\d+)$/, 'must be auto or a whole number of worker processes')
    .transform((value) => (value === 'auto' ? availableParallelism() : Number(value)))
    .pipe(z.number().int().min(1).max(256))
    .default(1),
  /** OTLP/HTTP collector (e.g. http://collector:4318); unset, nothing of OpenTelemetry is loaded (telemetry/). */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(
    z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  ),
  /**
   * GitHub secret scanning (POST /secret-scanning/github): the public keys its reports are
   * signed with, as a file in GitHub's `{ "public_keys": [...] }` format or a URL serving it
   * (https://api.github.com/meta/public_keys/secret_scanning), fetched and cached. Neither
   * set: the endpoint is off (404).
   */
  TOKEND_SECRET_SCANNING_KEYS_FILE: optionalString,
  TOKEND_SECRET_SCANNING_KEYS_URL: optionalString.pipe(
    z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  ),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

/**
 * Switches that only tests and benchmarks need. They are not part of the production
 * configuration (not in the README's table), and setting one logs a warning saying so.
 */
export const testingSchema = z.object({
  /** The "minute" of TOKEND_KEY_CREATIONS_PER_MINUTE; tests shorten it. */
  TOKEND_KEY_CREATION_WINDOW_MS: duration('ms', 1_000, 3_600_000).default(60_000),
  /** `false` stops recording lastUsedAt (SPEC §11 P7 measures on against off). */
  TOKEND_TRACK_LAST_USED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
})

/** `TOKEND_*` names that tokend's client side reads (the CLI, @tokend/client's users): never warned about. */
const CLIENT_VARIABLES = [
  'TOKEND_URL',
  'TOKEND_KEY',
  'TOKEND_KEY_FILE',
  'TOKEND_SERVICE_KEY',
  'TOKEND_SERVICE_KEY_FILE',
  'TOKEND_CACHE',
  'TOKEND_TIMEOUT_MS',
]

export type Config = z.infer<typeof configSchema> & z.infer<typeof testingSchema>

/**
 * Parses the environment once. Every bad variable is reported at once (one line each,
 * in a `ConfigError`); an unknown `TOKEND_*` variable, or a testing switch, is a warning.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  warn: (message: string) => void = (message) => process.stderr.write(`tokend: warning: ${message}\n`),
): Config {
  const schema = configSchema.extend(testingSchema.shape)
  const config = parseEnvironment(schema, env, { prefixes: ['TOKEND_'], alsoKnown: CLIENT_VARIABLES, warn })
  for (const name of Object.keys(testingSchema.shape)) {
    if (env[name]) warn(`${name} is a switch for tests and benchmarks, not a production setting`)
  }
  const after = config.TOKEND_DISABLE_UNUSED_AFTER
  if (after !== undefined && config.TOKEND_DISABLE_UNUSED_WARNING >= after) {
    // The warning goes out (after - warning) days into a key's idleness: that must be a real stretch of time.
    throw new ConfigError([
      { variable: 'TOKEND_DISABLE_UNUSED_WARNING', message: 'must be shorter than TOKEND_DISABLE_UNUSED_AFTER' },
    ])
  }
  return config
}
