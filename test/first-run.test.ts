import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, readlinkSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, repoRoot } from '@tokend/testing'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * The README's first command as a newcomer runs it on a fresh machine: as root, in a
 * clone inside a 0700 directory (as root's home is), with pnpm nowhere on PATH (the
 * command brings its own), on the embedded default, until /readyz answers; then Ctrl-C
 * (SIGINT to the whole process group, as a terminal sends it) ends it cleanly. It clones
 * the committed HEAD.
 */
const root = process.getuid?.() === 0
if (!root)
  process.stderr.write('first-run test skipped: it runs as root only (the case of a container, where it matters)\n')

describe.skipIf(!root)('the README start command, as root in a private directory, without pnpm', () => {
  let home: string | undefined
  let child: ChildProcess | undefined
  afterAll(async () => {
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {} // already gone
    }
    if (!home) return
    // The cluster lives where the postgres user can reach it; the clone links to it.
    const link = join(home, 'private/tokend/.data/tokend/pg')
    if (existsSync(link)) await rm(readlinkSync(link), { recursive: true, force: true })
    await rm(home, { recursive: true, force: true })
  })

  it('installs, builds, starts on embedded Postgres, answers /readyz, and stops on Ctrl-C', {
    timeout: 600_000,
  }, async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8')
    const command = /Run the service[\s\S]*?```sh\n(.+)\n```/.exec(readme)?.[1]
    expect(command).toMatch(/^npx -y pnpm@[\d.]+ install && npx -y pnpm@[\d.]+ start$/)

    home = await mkdtemp(join(tmpdir(), 'tokend-first-run-'))
    const privateDir = join(home, 'private')
    await mkdir(privateDir, { mode: 0o700 })
    await chmod(privateDir, 0o700)
    const clone = join(privateDir, 'tokend')
    await promisify(execFile)('git', ['clone', '--quiet', repoRoot, clone])

    // PATH without pnpm: every program of the usual directories but pnpm and pnpx.
    const bin = join(home, 'bin')
    await mkdir(bin)
    const seen = new Set<string>()
    for (const dir of (process.env.PATH ?? '').split(':').filter((dir) => existsSync(dir))) {
      for (const name of await readdir(dir)) {
        if (name === 'pnpm' || name === 'pnpx' || seen.has(name)) continue
        seen.add(name)
        await symlink(join(dir, name), join(bin, name))
      }
    }

    const port = await freePort()
    let output = ''
    child = spawn('bash', ['-c', command as string], {
      cwd: clone,
      detached: true, // its own process group, to send Ctrl-C to all of it
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: bin,
        HOME: process.env.HOME ?? '/root',
        PORT: String(port),
        TOKEND_EMBEDDED_PG_PORT: String(await freePort()),
        // Not the default 3001: other tests' tokends run beside this one.
        TOKEND_GRPC_PORT: String(await freePort()),
      },
    })
    child.stdout?.on('data', (chunk) => (output += chunk))
    child.stderr?.on('data', (chunk) => (output += chunk))
    const exited = new Promise<string>((resolve) =>
      child?.on('exit', (code, signal) => resolve(signal ?? String(code))),
    )

    const deadline = Date.now() + 540_000
    let ready = false
    while (!ready && Date.now() < deadline && child.exitCode === null) {
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (response) => response.ok,
        () => false,
      )
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
    expect(ready, output).toBe(true)
    expect(output).toContain(`"url":"http://localhost:${port}"`)
    expect((await readFile(join(clone, '.data/tokend/bootstrap.key'), 'utf8')).trim()).toMatch(/^tk_live_/)

    process.kill(-(child.pid as number), 'SIGINT')
    // npx may end on the signal before tokend has drained; tokend then stops its Postgres.
    expect(['0', 'SIGINT']).toContain(await exited)
    const pidFile = join(clone, '.data/tokend/pg/postmaster.pid')
    const stopped = Date.now() + 30_000
    while (
      (existsSync(pidFile) ||
        (await fetch(`http://127.0.0.1:${port}/healthz`).then(
          () => true,
          () => false,
        ))) &&
      Date.now() < stopped
    ) {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    expect(existsSync(pidFile), 'the embedded Postgres stopped').toBe(false)
    expect(output).toContain('"msg":"shutting down"')
    expect(output).not.toMatch(/ERR_PNPM|ELIFECYCLE|DatabaseError|^\s+at /m)
  })
})
