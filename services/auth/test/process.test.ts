import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, freshDatabase, type ServiceProcess, startTokendProcess } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Caller } from './harness.ts'

const serviceDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsx = join(serviceDir, 'node_modules/.bin/tsx')

describe('pnpm start on the embedded default', () => {
  let dataDir: string
  let env: Record<string, string>
  let running: ServiceProcess | undefined

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tokend-data-'))
    await chmod(dataDir, 0o755) // embedded Postgres runs as its own user and must reach its folder
    env = {
      TOKEND_DATA_DIR: dataDir,
      TOKEND_EMBEDDED_PG_PORT: String(await freePort()),
      PORT: String(await freePort()),
    }
  })
  afterAll(async () => {
    await running?.stop('SIGTERM')
    await rm(dataDir, { recursive: true, force: true })
  })

  it('keeps every key and every revocation across a restart, and bootstraps once', async () => {
    running = await startTokendProcess(env)
    const first = running.output()
    const bootstrapKey = (await readFile(join(dataDir, 'bootstrap.key'), 'utf8')).trim()
    expect((await stat(join(dataDir, 'bootstrap.key'))).mode & 0o777).toBe(0o600)
    expect(first.split(bootstrapKey)).toHaveLength(2) // printed exactly once

    const operator = new Caller(running.url, bootstrapKey)
    const kept = (await operator.mutation('token.issue', { name: 'kept', environment: 'live' })).body.result.data
    const revoked = (await operator.mutation('token.issue', { name: 'revoked', environment: 'live' })).body.result.data
    await operator.mutation('token.revoke', { id: revoked.id })

    expect(await running.stop('SIGTERM')).toBe(0)
    expect(running.output()).toContain('shutting down')

    running = await startTokendProcess(env)
    expect(running.output()).not.toContain(bootstrapKey)
    const again = new Caller(running.url, bootstrapKey)
    const verify = async (token: string) => (await again.mutation('token.verify', { token })).body.result.data
    expect((await verify(kept.token)).valid).toBe(true)
    expect(await verify(revoked.token)).toEqual({ valid: false, reason: 'REVOKED' })
    expect(running.output()).not.toContain(kept.token.slice(12))

    expect(await running.stop('SIGINT')).toBe(0)
    // Two starts of an embedded cluster (initdb first): slow on a busy two-core machine.
  }, 120_000)

  it('stops at start-up naming every bad setting, one line each, and warns about unknown ones', async () => {
    const child = spawn(tsx, ['--conditions=tokend-source', 'src/main.ts'], {
      cwd: serviceDir,
      env: { PATH: process.env.PATH ?? '', PORT: 'eighty', TOKEND_CACHE_TTL_MS: '90s', TOKEND_SIGN_UP: 'open' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stderr?.on('data', (chunk) => (output += chunk))
    child.stdout?.on('data', (chunk) => (output += chunk))
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(1)
    expect(output.trim().split('\n')).toEqual([
      'tokend: warning: TOKEND_SIGN_UP is not a setting of this service; did you mean TOKEND_SIGNUP? (ignored)',
      'tokend: invalid configuration, 2 variables:',
      '  PORT: must be a whole number',
      '  TOKEND_CACHE_TTL_MS: must be between 0ms and 1m',
    ])
  })

  it('stops with one clear line when its port is taken', async () => {
    const database = await freshDatabase()
    const taken = createServer()
    const port = await freePort()
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve))
    try {
      const failed = startTokendProcess({
        DATABASE_URL: database.url,
        PORT: String(port),
        TOKEND_BOOTSTRAP_TOKEN_FILE: '',
      })
      await expect(failed).rejects.toThrow(
        /exited with 1[\s\S]*tokend: failed to start: cannot listen on 127.0.0.1:\d+/,
      )
    } finally {
      taken.close()
      await database.drop()
    }
  })
})
