import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKey } from '@tokend/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from './config.ts'

describe('voice-api config', () => {
  const key = generateKey('tk', 'live')
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'voice-api-config-'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('has working defaults beside the service key', () => {
    expect(loadConfig({ TOKEND_SERVICE_KEY: key })).toMatchObject({
      PORT: 3100,
      TOKEND_URL: 'http://127.0.0.1:3000',
      TOKEND_SERVICE_KEY: key,
      TOKEND_CACHE: 'off',
      VOICE_API_EMBEDDED_PG_PORT: 54_330,
      VOICE_API_DATA_DIR: expect.stringMatching(/\.data\/voice-api$/),
    })
  })

  it('reads the service key from a file', async () => {
    const file = join(dir, 'service.key')
    await writeFile(file, `${key}\n`)
    expect(loadConfig({ TOKEND_SERVICE_KEY_FILE: file }).TOKEND_SERVICE_KEY).toBe(key)
  })

  it('stops with one line naming the variable, never showing the key', () => {
    const bad: [Record<string, string>, string][] = [
      [{}, 'TOKEND_SERVICE_KEY: required'],
      [{ TOKEND_SERVICE_KEY: `${key}x` }, 'TOKEND_SERVICE_KEY: not a tk_ access key'],
      [{ TOKEND_SERVICE_KEY: key, TOKEND_SERVICE_KEY_FILE: '/x' }, 'not both'],
      [{ TOKEND_SERVICE_KEY_FILE: join(dir, 'missing') }, 'TOKEND_SERVICE_KEY_FILE: cannot read'],
      [{ TOKEND_SERVICE_KEY: key, TOKEND_CACHE: 'yes' }, 'TOKEND_CACHE'],
      [{ TOKEND_SERVICE_KEY: key, TOKEND_URL: 'ftp://x' }, 'TOKEND_URL'],
      [{ TOKEND_SERVICE_KEY: key, PORT: 'eighty' }, 'PORT'],
    ]
    for (const [env, message] of bad) {
      const error = (() => {
        try {
          loadConfig(env)
        } catch (caught) {
          return caught as Error
        }
      })()
      expect(error?.message).toContain(message)
      expect(error?.message).not.toContain(key)
      expect(error?.message).not.toContain('\n')
    }
  })

  it('reports every bad variable at once, warns about unknown VOICE_API_ ones, takes durations', () => {
    const error = (() => {
      try {
        loadConfig({ PORT: 'eighty', TOKEND_CACHE: 'true', TOKEND_SERVICE_KEY: `${key}x` }, () => {})
      } catch (caught) {
        return caught as Error
      }
    })()
    expect(error?.message.split('\n')).toEqual([
      'invalid configuration, 3 variables:',
      '  PORT: must be a whole number',
      '  TOKEND_CACHE: must be one of on, off',
      '  TOKEND_SERVICE_KEY: not a tk_ access key',
    ])
    const warnings: string[] = []
    const config = loadConfig({ TOKEND_SERVICE_KEY: key, TOKEND_TIMEOUT_MS: '1.5s', VOICE_API_DATADIR: '/x' }, (m) =>
      warnings.push(m),
    )
    expect(config.TOKEND_TIMEOUT_MS).toBe(1_500)
    expect(warnings).toEqual([
      'VOICE_API_DATADIR is not a setting of this service; did you mean VOICE_API_DATA_DIR? (ignored)',
    ])
  })
})
