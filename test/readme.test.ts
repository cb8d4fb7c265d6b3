import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { configSchema, testingSchema } from '@tokend/auth'
import { freePort, repoRoot, type ServiceProcess, startTokendProcess } from '@tokend/testing'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * The README's walk-through, run as written against a real `pnpm start` on the
 * embedded default. Only the port and the data folder are moved, so the test never
 * touches a developer's own `.data/` or port 3000.
 */
describe('README walk-through', () => {
  let service: ServiceProcess | undefined
  let dataDir: string | undefined
  afterAll(async () => {
    await service?.stop()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('issues, verifies, revokes and verifies again, verbatim, on the port of PORT', async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8')
    const block = /<!-- walkthrough:start -->\n```bash\n([\s\S]*?)```\n<!-- walkthrough:end -->/.exec(readme)?.[1]
    expect(block).toBeDefined()
    expect(readme).toContain('npx -y pnpm@10.34.9 install && npx -y pnpm@10.34.9 start')
    expect(readme).toContain('npx -y pnpm@10.34.9 install && npx -y pnpm@10.34.9 test')

    dataDir = await mkdtemp(join(tmpdir(), 'tokend-readme-'))
    await chmod(dataDir, 0o755)
    const port = await freePort()
    service = await startTokendProcess({
      PORT: String(port),
      TOKEND_DATA_DIR: join(dataDir, '.data/tokend'), // the script runs in dataDir
      TOKEND_EMBEDDED_PG_PORT: String(await freePort()),
    })
    const run = (env: Record<string, string>) =>
      promisify(execFile)('bash', ['-euo', 'pipefail', '-c', block as string], {
        cwd: dataDir,
        env: { ...process.env, ...env },
      })
    // Without a tokend on the port: the first line says so, and nothing else runs.
    const down = await run({ PORT: String(await freePort()) }).then(
      () => undefined,
      (error: { stdout: string; stderr: string }) => error,
    )
    expect(down?.stdout).toBe('')
    expect(down?.stderr).toMatch(/^tokend is not running at http:\/\/localhost:\d+: start it first/)

    const { stdout } = await run({ PORT: String(port) })
    const lines = stdout.trim().split('\n')
    expect(lines).toHaveLength(5)
    const [issued, verified, revoked, again, list] = lines.map((line) => JSON.parse(line).result.data)
    expect(issued).toMatchObject({ name: 'voice-api', environment: 'test', token: expect.stringMatching(/^tk_test_/) })
    expect(verified).toMatchObject({ valid: true, kind: 'access_key', tokenId: issued.id, scopes: ['recordings:read'] })
    expect(revoked).toEqual({ id: issued.id, revokedAt: expect.any(String) })
    expect(again).toEqual({ valid: false, reason: 'REVOKED' })
    expect(list.items.map((item: { id: string; status: string }) => [item.id, item.status])).toContainEqual([
      issued.id,
      'revoked',
    ])
  })

  it('documents exactly the production settings, and no test switch', async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Benchmarks'))
    const documented = [...section.matchAll(/^\| `(\w+)` +\|/gm)].map((match) => match[1])
    expect(documented.sort()).toEqual(Object.keys(configSchema.shape).sort())
    for (const name of Object.keys(testingSchema.shape)) expect(readme).not.toContain(name)
    expect(readme).not.toContain('../shared')
  })
})
