import { availableParallelism } from 'node:os'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './config.ts'

const quiet = () => {}

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, quiet)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error(`accepted ${JSON.stringify(env)}`)
}

describe('loadConfig', () => {
  it('has working defaults', () => {
    const config = loadConfig({}, quiet)
    expect(config).toMatchObject({ PORT: 3000, TOKEND_TOKEN_PREFIX: 'tk', TOKEND_CACHE_MAX_ENTRIES: 100_000 })
    expect(config).toMatchObject({
      TOKEND_SIGNUP: 'closed',
      TOKEND_TRIAL_KEY_DAYS: 30,
      TOKEND_ARGON2_MEMORY_KIB: 19_456,
      TOKEND_ARGON2_TIME_COST: 2,
      TOKEND_PASSWORD_HASH_CONCURRENCY: 2,
      TOKEND_KEY_CREATION_WINDOW_MS: 60_000,
      TOKEND_TRACK_LAST_USED: true,
    })
    expect(config.DATABASE_URL).toBeUndefined()
    expect(config.TOKEND_DATA_DIR).toMatch(/\.data\/tokend$/)
  })

  it('believes no proxy unless told which', () => {
    expect(loadConfig({}, quiet).TOKEND_TRUST_PROXY).toBe(false)
    expect(loadConfig({ TOKEND_TRUST_PROXY: 'loopback, uniquelocal' }, quiet).TOKEND_TRUST_PROXY).toBe(
      'loopback, uniquelocal',
    )
  })

  it('treats empty strings as unset', () => {
    const config = loadConfig({ DATABASE_URL: '', TOKEND_BOOTSTRAP_TOKEN_FILE: '', PORT: '' }, quiet)
    expect([config.DATABASE_URL, config.TOKEND_BOOTSTRAP_TOKEN_FILE, config.PORT]).toEqual([undefined, undefined, 3000])
  })

  it.each([
    [{ PORT: 'eighty' }, 'PORT: must be a whole number'],
    [{ PORT: '70000' }, 'PORT: must be at most 65535'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL: must be a postgres:// URL'],
    [{ TOKEND_TOKEN_PREFIX: 'TK' }, 'TOKEND_TOKEN_PREFIX: must be 2–8 lowercase letters'],
    [{ TOKEND_CACHE_TTL_MS: '120000' }, 'TOKEND_CACHE_TTL_MS: must be between 0ms and 1m'],
    [{ TOKEND_CACHE_TTL_MS: '2m' }, 'TOKEND_CACHE_TTL_MS: must be between 0ms and 1m'],
    [
      { TOKEND_CACHE_TTL_MS: 'soon' },
      'TOKEND_CACHE_TTL_MS: must be a duration such as 90s, 15m or 7d, or a number of ms',
    ],
    [{ TOKEND_CACHE_MAX_ENTRIES: '0' }, 'TOKEND_CACHE_MAX_ENTRIES: must be at least 1'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent'],
    [{ TOKEND_SIGNUP: 'maybe' }, 'TOKEND_SIGNUP: must be one of open, closed'],
    [{ TOKEND_TRIAL_KEY_DAYS: '14' }, 'TOKEND_TRIAL_KEY_DAYS: must be between 15d and 90d'],
    [{ TOKEND_TRIAL_KEY_DAYS: '91' }, 'TOKEND_TRIAL_KEY_DAYS'],
    [{ TOKEND_ARGON2_MEMORY_KIB: '4096' }, 'TOKEND_ARGON2_MEMORY_KIB: must be at least 19456'],
    [{ TOKEND_ARGON2_TIME_COST: '1' }, 'TOKEND_ARGON2_TIME_COST'],
    [{ TOKEND_PASSWORD_HASH_CONCURRENCY: '0' }, 'TOKEND_PASSWORD_HASH_CONCURRENCY'],
    [{ TOKEND_TRUST_PROXY: 'loopback; drop' }, 'TOKEND_TRUST_PROXY: must be none, or a comma-separated list'],
  ])('rejects %o with one line naming the variable', (env, message) => {
    const error = failure(env)
    expect(error.message.startsWith(`invalid configuration: ${message}`)).toBe(true)
    expect(error.message).not.toContain('\n')
  })

  it('reports every bad variable at once, one line each, without their values', () => {
    const error = failure({
      PORT: 'eighty',
      TOKEND_SIGNUP: 'maybe',
      TOKEND_CACHE_TTL_MS: '90s',
      SMTP_URL: 'http://secret@x',
    })
    expect(error.message.split('\n')).toEqual([
      'invalid configuration, 4 variables:',
      '  PORT: must be a whole number',
      '  TOKEND_CACHE_TTL_MS: must be between 0ms and 1m',
      '  SMTP_URL: must be an smtp:// or smtps:// URL',
      '  TOKEND_SIGNUP: must be one of open, closed',
    ])
    expect(error.message).not.toContain('secret')
  })

  it('runs one worker by default, one per core with auto, and refuses anything else by name', () => {
    expect(loadConfig({}, quiet).TOKEND_WORKERS).toBe(1)
    expect(loadConfig({ TOKEND_WORKERS: '2' }, quiet).TOKEND_WORKERS).toBe(2)
    expect(loadConfig({ TOKEND_WORKERS: 'auto' }, quiet).TOKEND_WORKERS).toBe(availableParallelism())
    for (const bad of ['0', '-1', 'two', '1.5', 'AUTO ', '257']) {
      expect(failure({ TOKEND_WORKERS: bad }).problems.map((p) => p.variable)).toEqual(['TOKEND_WORKERS'])
    }
    expect(failure({ TOKEND_WORKERS: 'two' }).message).toBe(
      'invalid configuration: TOKEND_WORKERS: must be auto or a whole number of worker processes',
    )
    expect(failure({ TOKEND_WORKERS: '0' }).message).toBe('invalid configuration: TOKEND_WORKERS: must be at least 1')
  })

  it('loads OpenTelemetry only for an http(s) OTLP endpoint', () => {
    expect(loadConfig({}, quiet).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined()
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, quiet).OTEL_EXPORTER_OTLP_ENDPOINT,
    ).toBe('http://collector:4318')
    expect(failure({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }).problems[0]?.variable).toBe(
      'OTEL_EXPORTER_OTLP_ENDPOINT',
    )
  })

  it('takes durations with units, and plain numbers in the unit of the name', () => {
    const config = loadConfig(
      {
        TOKEND_CACHE_TTL_MS: '30s',
        TOKEND_NEGATIVE_CACHE_TTL_MS: '1500',
        TOKEND_REMINDER_INTERVAL_MS: '15m',
        TOKEND_LOGIN_WINDOW_S: '1h',
        TOKEND_TRIAL_KEY_DAYS: '15d',
        TOKEND_LISTENER_HEARTBEAT_MS: '250ms',
        TOKEND_LAST_USED_FLUSH_MS: '2.5s',
      },
      quiet,
    )
    expect(config).toMatchObject({
      TOKEND_CACHE_TTL_MS: 30_000,
      TOKEND_NEGATIVE_CACHE_TTL_MS: 1_500,
      TOKEND_REMINDER_INTERVAL_MS: 900_000,
      TOKEND_LOGIN_WINDOW_S: 3_600,
      TOKEND_TRIAL_KEY_DAYS: 15,
      TOKEND_LISTENER_HEARTBEAT_MS: 250,
      TOKEND_LAST_USED_FLUSH_MS: 2_500,
    })
    expect(failure({ TOKEND_LOGIN_WINDOW_S: '1500ms' }).message).toBe(
      'invalid configuration: TOKEND_LOGIN_WINDOW_S: must be a whole number of s',
    )
  })

  it('reads the forgotten-key policy (off unless set) and the secret scanning key sources', () => {
    const defaults = loadConfig({}, quiet)
    expect(defaults.TOKEND_DISABLE_UNUSED_AFTER).toBeUndefined()
    expect(defaults.TOKEND_DISABLE_UNUSED_WARNING).toBe(7)
    expect(defaults.TOKEND_SECRET_SCANNING_KEYS_FILE ?? defaults.TOKEND_SECRET_SCANNING_KEYS_URL).toBeUndefined()
    expect(
      loadConfig(
        {
          TOKEND_DISABLE_UNUSED_AFTER: '90d',
          TOKEND_DISABLE_UNUSED_WARNING: '14',
          TOKEND_SECRET_SCANNING_KEYS_URL: 'https://api.github.com/meta/public_keys/secret_scanning',
        },
        quiet,
      ),
    ).toMatchObject({ TOKEND_DISABLE_UNUSED_AFTER: 90, TOKEND_DISABLE_UNUSED_WARNING: 14 })
    expect(failure({ TOKEND_DISABLE_UNUSED_AFTER: '0d' }).message).toBe(
      'invalid configuration: TOKEND_DISABLE_UNUSED_AFTER: must be between 1d and 36500d',
    )
    expect(failure({ TOKEND_DISABLE_UNUSED_AFTER: '12h' }).message).toContain('must be a whole number of d')
    expect(failure({ TOKEND_DISABLE_UNUSED_AFTER: '7d' }).message).toBe(
      'invalid configuration: TOKEND_DISABLE_UNUSED_WARNING: must be shorter than TOKEND_DISABLE_UNUSED_AFTER',
    )
    expect(failure({ TOKEND_SECRET_SCANNING_KEYS_URL: 'file:///etc/keys.json' }).message).toContain(
      'TOKEND_SECRET_SCANNING_KEYS_URL: must be an http:// or https:// URL',
    )
  })

  it('warns about an unknown TOKEND_ variable, naming the closest known one, and starts anyway', () => {
    const warnings: string[] = []
    const config = loadConfig({ TOKEND_SIGN_UP: 'open', TOKEND_URL: 'http://x', OTHER_THING: '1' }, (message) =>
      warnings.push(message),
    )
    expect(config.TOKEND_SIGNUP).toBe('closed')
    expect(warnings).toEqual(['TOKEND_SIGN_UP is not a setting of this service; did you mean TOKEND_SIGNUP? (ignored)'])
  })

  it('keeps test switches out of production: they work, with a warning', () => {
    const warnings: string[] = []
    const config = loadConfig({ TOKEND_TRACK_LAST_USED: 'false', TOKEND_KEY_CREATION_WINDOW_MS: '3s' }, (message) =>
      warnings.push(message),
    )
    expect(config).toMatchObject({ TOKEND_TRACK_LAST_USED: false, TOKEND_KEY_CREATION_WINDOW_MS: 3_000 })
    expect(warnings).toEqual([
      'TOKEND_KEY_CREATION_WINDOW_MS is a switch for tests and benchmarks, not a production setting',
      'TOKEND_TRACK_LAST_USED is a switch for tests and benchmarks, not a production setting',
    ])
  })
})
