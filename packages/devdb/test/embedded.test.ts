import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type EmbeddedDatabase, removeCluster, startEmbeddedPostgres } from '../src/index.ts'

const silent = { info() {}, warn() {} }

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Runs test/start-embedded.ts in its own process, as a service would; resolves with the URL it prints. */
function startInChild(dataDir: string, port: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'start-embedded.ts'), dataDir, String(port)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk) => {
      output += chunk
      const url = /^(postgres:\S+)$/m.exec(output)?.[1]
      if (url) resolve({ child, url })
    })
    child.stderr?.on('data', (chunk) => (output += chunk))
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)))
  })
}

async function query(url: string, text: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

describe('embedded postgres', { timeout: 120_000 }, () => {
  const dirs: string[] = []
  const running: EmbeddedDatabase[] = []
  const children: ChildProcess[] = []
  const newDataDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokend-devdb-'))
    dirs.push(dir)
    return join(dir, 'data')
  }
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      const exited = new Promise((done) => child.once('exit', done))
      child.kill('SIGTERM')
      await exited
    }
    for (const database of running.splice(0)) await database.stop()
  })
  afterAll(async () => {
    // A private temporary folder (mkdtemp's 0700) puts the cluster in the shared place, as root.
    for (const dir of dirs) await removeCluster(join(dir, 'data', 'pg'))
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it('gives each data directory its own superuser password, kept in a 0600 file', async () => {
    const [first, second] = [await newDataDir(), await newDataDir()]
    const a = await startEmbeddedPostgres({ dataDir: first, port: await freePort(), logger: silent })
    running.push(a)
    const b = await startEmbeddedPostgres({ dataDir: second, port: await freePort(), logger: silent })
    running.push(b)
    const passwordOf = (url: string) => decodeURIComponent(new URL(url).password)
    expect(passwordOf(a.url)).not.toBe(passwordOf(b.url))
    expect(passwordOf(a.url)).toHaveLength(32)
    expect((await readFile(join(first, 'postgres.password'), 'utf8')).trim()).toBe(passwordOf(a.url))
    expect((await stat(join(first, 'postgres.password'))).mode & 0o777).toBe(0o600)
    // The old constant no longer opens it.
    const legacy = new URL(a.url)
    legacy.password = 'tokend-embedded'
    await expect(query(legacy.toString(), 'select 1')).rejects.toThrow(/password authentication failed/)
  })

  it('refuses a port held by another data directory, in one line naming the setting', async () => {
    const port = await freePort()
    running.push(await startEmbeddedPostgres({ dataDir: await newDataDir(), port, logger: silent }))
    const other = await newDataDir()
    const error = await startEmbeddedPostgres({
      dataDir: other,
      port,
      portVariable: 'TOKEND_EMBEDDED_PG_PORT',
      logger: silent,
    }).then(
      () => undefined,
      (caught: Error) => caught,
    )
    expect(error?.message).toMatch(
      new RegExp(`^port ${port} is taken by another server, .* set TOKEND_EMBEDDED_PG_PORT to a free port$`),
    )
    expect(error?.message).not.toContain('\n')
  })

  it('takes over the server of a run that was killed, keeping its data', async () => {
    const dataDir = await newDataDir()
    const port = await freePort()
    const killed = await startInChild(dataDir, port)
    await query(killed.url, 'create table kept (x int); insert into kept values (42)')
    killed.child.kill('SIGKILL')
    await new Promise((done) => killed.child.once('exit', done))
    expect(await query(killed.url, 'select 1 as up')).toEqual([{ up: 1 }]) // orphaned, still running

    const database = await startEmbeddedPostgres({ dataDir, port: await freePort(), logger: silent })
    running.push(database)
    expect(await query(database.url, 'select x from kept')).toEqual([{ x: 42 }])
    await expect(query(killed.url, 'select 1')).rejects.toThrow() // the orphan is gone
  })

  it('refuses a data directory whose server a live service is using', async () => {
    const dataDir = await newDataDir()
    const live = await startInChild(dataDir, await freePort())
    children.push(live.child)
    await expect(startEmbeddedPostgres({ dataDir, port: await freePort(), logger: silent })).rejects.toThrow(
      new RegExp(`is in use by process ${live.child.pid}; stop that one first`),
    )
    expect(await query(live.url, 'select 1 as up')).toEqual([{ up: 1 }])
  })
})
