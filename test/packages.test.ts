import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Caller, type RunningTokend, repoRoot, type ServiceProcess, startService, startTokend } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)

/**
 * @tokend/client and @tokend/cli as a team outside the monorepo gets them: `npm pack`
 * tarballs installed with plain npm into a project in a temporary folder, a plain
 * JavaScript express service run by `node`, and the `tokend` binary, against a real tokend.
 */
describe('the packed client and CLI, installed with npm outside the repository', { timeout: 300_000 }, () => {
  let project: string
  let tokend: RunningTokend
  let service: ServiceProcess | undefined
  const env = () => ({
    ...process.env,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_loglevel: 'error',
  })

  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'tokend-outside-'))
    // Cached by turbo when `pnpm test` has just built them.
    await run(
      'pnpm',
      ['exec', 'turbo', 'run', 'build', '--filter=@tokend/client', '--filter=@tokend/cli', '--output-logs=errors-only'],
      {
        cwd: repoRoot,
      },
    )
    const tarballs: string[] = []
    for (const dir of ['packages/client', 'packages/cli']) {
      const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', project], {
        cwd: join(repoRoot, dir),
        env: env(),
      })
      tarballs.push(join(project, (JSON.parse(stdout) as { filename: string }[])[0]?.filename as string))
    }
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'outside', private: true, type: 'module' }))
    await copyFile(join(repoRoot, 'test/fixtures/outside-service/server.js'), join(project, 'server.js'))
    await run('npm', ['install', ...tarballs, 'express@5'], { cwd: project, env: env(), timeout: 240_000 })
    tokend = await startTokend()
  }, 300_000)

  afterAll(async () => {
    await service?.stop()
    await tokend?.stop()
    if (project) await rm(project, { recursive: true, force: true })
  })

  it('installs without the monorepo: no workspace links, compiled JavaScript with type declarations', async () => {
    for (const name of ['client', 'cli']) {
      const manifest = JSON.parse(await readFile(join(project, 'node_modules/@tokend', name, 'package.json'), 'utf8'))
      expect(JSON.stringify(manifest.dependencies ?? {})).not.toContain('workspace:')
      expect(manifest.exports['.'].types).toMatch(/\.d\.ts$/)
      expect(manifest.exports['.'].default).toMatch(/\.js$/)
    }
    const types = await readFile(join(project, 'node_modules/@tokend/client/dist/index.d.ts'), 'utf8')
    expect(types).toContain('declare function createTokendClient')
    expect(types).not.toMatch(/^import .* from '@tokend\//m)
  })

  it('protects a route of a plain-JavaScript express service with requireAuth', async () => {
    const operator = new Caller(tokend.url, tokend.bootstrapKey)
    const issue = async (scopes: string[]) => {
      const reply = await operator.mutation('token.issue', { name: 'outside', environment: 'live', scopes })
      return reply.body.result.data.token as string
    }
    const serviceKey = await issue(['tokend:verify'])
    const userKey = await issue(['recordings:read'])
    service = await startService(process.execPath, ['server.js'], {
      cwd: project,
      env: { TOKEND_URL: tokend.url, TOKEND_SERVICE_KEY: serviceKey },
      ready: /listening on (http:\/\/\S+)/,
      timeoutMs: 30_000,
    })
    const call = (key?: string) =>
      fetch(`${service?.url}/v1/recordings`, { headers: key ? { authorization: `Bearer ${key}` } : {} })
    const allowed = await call(userKey)
    expect(allowed.status).toBe(200)
    expect(await allowed.json()).toMatchObject({ environment: 'live', recordings: [] })
    expect((await call()).status).toBe(401)
    expect((await call(serviceKey)).status).toBe(403) // no recordings:read

    const tokendBin = join(project, 'node_modules/.bin/tokend')
    const cli = (args: string[], key: string) =>
      run(tokendBin, args, {
        cwd: project,
        env: { PATH: process.env.PATH, HOME: project, TOKEND_URL: tokend.url, TOKEND_KEY: key },
      })
    const manifest = JSON.parse(await readFile(join(repoRoot, 'packages/cli/package.json'), 'utf8'))
    expect((await cli(['--version'], serviceKey)).stdout.trim()).toBe(manifest.version)
    const verified = await cli(['verify', userKey, '--scope', 'recordings:read', '--json'], serviceKey)
    expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, kind: 'access_key', scopes: ['recordings:read'] })
  })
})
