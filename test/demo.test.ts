import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, repoRoot, type ServiceProcess, startService } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * `pnpm demo` as a developer runs it, twice: the printed curl example works, and a
 * restart reuses the stored keys and keeps the data. Only ports and folders are moved.
 */
describe('pnpm demo', () => {
  let dataDir: string
  let env: Record<string, string>
  let demo: ServiceProcess | undefined
  const serviceDir = join(repoRoot, 'services/voice-api')

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tokend-demo-'))
    await chmod(dataDir, 0o755) // embedded Postgres runs as its own user and must reach its folders
    env = {
      PORT: String(await freePort()),
      // Passed on to tokend: gRPC's default port is fixed, and this test does not use it.
      TOKEND_GRPC_PORT: '0',
      VOICE_API_PORT: String(await freePort()),
      TOKEND_EMBEDDED_PG_PORT: String(await freePort()),
      VOICE_API_EMBEDDED_PG_PORT: String(await freePort()),
      TOKEND_DATA_DIR: join(dataDir, 'tokend'),
      VOICE_API_DATA_DIR: join(dataDir, 'voice-api'),
    }
  })
  afterAll(async () => {
    await demo?.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  const start = () =>
    startService(process.execPath, ['dist/demo.js'], {
      cwd: serviceDir,
      env,
      ready: /demo ready: tokend (http:\/\/[\d.:]+)/,
      timeoutMs: 120_000,
    })

  /** Runs the printed example lines in bash and returns each curl's JSON answer. */
  async function runExample(output: string): Promise<any[]> {
    const lines = output.split('\n').filter((line) => /^ {2}(KEY=|curl )/.test(line))
    expect(lines).toHaveLength(4)
    const script = lines.map((line) => `${line.trim()}; echo`).join('\n')
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { cwd: repoRoot })
    return stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
  }

  it('starts both services, prints a working curl example, and restarts idempotently', async () => {
    demo = await start()
    expect(demo.output()).toContain('service key created, demo user key created')
    const [me, created, list] = await runExample(demo.output())
    expect(me).toMatchObject({ environment: 'test', scopes: ['recordings:read', 'recordings:write'] })
    expect(created).toMatchObject({ id: expect.stringMatching(/^rec_/), title: 'first call' })
    expect(list.items.map((item: { id: string }) => item.id)).toEqual([created.id])

    const serviceKeyFile = join(env.VOICE_API_DATA_DIR as string, 'service.key')
    const serviceKey = await readFile(serviceKeyFile, 'utf8')
    expect((await stat(serviceKeyFile)).mode & 0o777).toBe(0o600)
    expect((await stat(join(env.VOICE_API_DATA_DIR as string, 'demo-user.key'))).mode & 0o777).toBe(0o600)
    expect(demo.output()).not.toContain(serviceKey.trim())
    expect(await demo.stop('SIGTERM')).toBe(0)

    demo = await start()
    expect(demo.output()).toContain('service key reused, demo user key reused')
    expect(await readFile(serviceKeyFile, 'utf8')).toBe(serviceKey)
    const [, second, again] = await runExample(demo.output())
    expect(again.items.map((item: { id: string }) => item.id)).toEqual([second.id, created.id])
    expect(await demo.stop('SIGTERM')).toBe(0)
  })
})
