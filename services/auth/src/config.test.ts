import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from './config.ts'

describe('loadConfig', () => {
  it('has working defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({ PORT: 3000, TOKEND_TOKEN_PREFIX: 'tk', TOKEND_CACHE_MAX_ENTRIES: 100_000 })
    expect(config).toMatchObject({
      TOKEND_SIGNUP: 'closed',
      TOKEND_TRIAL_KEY_DAYS: 30,
      TOKEND_ARGON2_MEMORY_KIB: 19_456,
      TOKEND_ARGON2_TIME_COST: 2,
      TOKEND_PASSWORD_HASH_CONCURRENCY: 2,
    })
    expect(config.DATABASE_URL).toBeUndefined()
    expect(config.TOKEND_DATA_DIR).toMatch(/\.data\/tokend$/)
  })

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', TOKEND_BOOTSTRAP_TOKEN_FILE: '' })).toMatchObject({
      DATABASE_URL: undefined,
      TOKEND_BOOTSTRAP_TOKEN_FILE: undefined,
    })
  })

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ TOKEND_TOKEN_PREFIX: 'TK' }, 'TOKEND_TOKEN_PREFIX'],
    [{ TOKEND_CACHE_TTL_MS: '120000' }, 'TOKEND_CACHE_TTL_MS'],
    [{ TOKEND_CACHE_MAX_ENTRIES: '0' }, 'TOKEND_CACHE_MAX_ENTRIES'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ TOKEND_SIGNUP: 'maybe' }, 'TOKEND_SIGNUP'],
    [{ TOKEND_TRIAL_KEY_DAYS: '14' }, 'TOKEND_TRIAL_KEY_DAYS'],
    [{ TOKEND_TRIAL_KEY_DAYS: '91' }, 'TOKEND_TRIAL_KEY_DAYS'],
    [{ TOKEND_ARGON2_MEMORY_KIB: '4096' }, 'TOKEND_ARGON2_MEMORY_KIB'],
    [{ TOKEND_ARGON2_TIME_COST: '1' }, 'TOKEND_ARGON2_TIME_COST'],
    [{ TOKEND_PASSWORD_HASH_CONCURRENCY: '0' }, 'TOKEND_PASSWORD_HASH_CONCURRENCY'],
  ])('rejects %o with one line naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    try {
      loadConfig(env)
    } catch (error) {
      const message = (error as Error).message
      expect(message.startsWith(`invalid configuration: ${name}:`)).toBe(true)
      expect(message).not.toContain('\n')
    }
  })
})
