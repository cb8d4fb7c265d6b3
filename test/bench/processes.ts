import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { repoRoot } from '@tokend/testing'
import pg from 'pg'
import { cpuTicks } from './measures.ts'

/** The server side (tokend, the baseline, Postgres) runs on one core, the load generator on another. */
export const SERVER_CORE = 0
export const CLIENT_CORE = 1

/** Pinning needs taskset and two cores; without them everything runs unpinned (and the report says so). */
export const canPin = cpus().length >= 2 && hasTaskset()

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** `command args` prefixed with `taskset -c core` when pinning is possible. */
export function pinnedCommand(core: number, command: string, args: string[]): [string, string[]] {
  return canPin ? ['taskset', ['-c', String(core), command, ...args]] : [command, args]
}

/** Moves a running process (and all its threads) to `core`. */
export function pinProcess(pid: number, core: number): void {
  if (canPin) execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' })
}

/**
 * Moves a local Postgres cluster to `core`: its postmaster (found as the parent of our
 * own backend) and every process it has forked; backends forked later inherit it.
 * Returns false when the cluster is not a local process we can see.
 */
export async function pinPostgres(url: string, core: number): Promise<boolean> {
  if (!canPin) return false
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  let backend: number
  try {
    backend = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0
  } finally {
    await client.end()
  }
  const postmaster = parentOf(backend)
  if (postmaster === undefined) return false
  const pids = [postmaster, ...childrenOf(postmaster)]
  for (const pid of pids) {
    try {
      pinProcess(pid, core)
    } catch {
      // A backend that exited meanwhile.
    }
  }
  return true
}

function parentOf(pid: number): number | undefined {
  const status = join('/proc', String(pid), 'status')
  if (!existsSync(status)) return undefined
  const match = /^PPid:\s+(\d+)$/m.exec(readFileSync(status, 'utf8'))
  return match ? Number(match[1]) : undefined
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return parentOf(pid) === parent
      } catch {
        return false
      }
    })
}

/** Every child this process started, so an interrupted run can kill them all. */
const children = new Set<ChildProcess>()

export function track(child: ChildProcess): ChildProcess {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

/** Kills every child still running; synchronous, so it also works from a signal handler. */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL')
}

export interface ServerProcess {
  url: string
  pid: number
  /** Where the preloaded heap sampler (heap-sampler.ts) answers, when the server has one. */
  heapFile?: string
  output(): string
  stop(): Promise<void>
}

/**
 * Spawns a server pinned to `core` and resolves once `GET url + readyPath` answers 200
 * (its log may be silenced, so readiness is asked, not read).
 */
export async function startPinnedServer(options: {
  core: number
  command: string
  args: string[]
  cwd: string
  env: Record<string, string>
  port: number
  readyPath: string
  timeoutMs?: number
  /** Preload heap-sampler.ts (after tsx, before the script), answering in this file. */
  heapFile?: string
}): Promise<ServerProcess> {
  const script = options.args.slice(-1)
  // The sampler is TypeScript: a server that runs without the loader gets it for the preload.
  const loader = options.args.includes('tsx') ? [] : ['--import', 'tsx']
  const preload = options.heapFile ? [...loader, '--import', SAMPLER] : []
  const [command, args] = pinnedCommand(options.core, options.command, [
    ...options.args.slice(0, -1),
    ...preload,
    ...script,
  ])
  const sampler = options.heapFile ? { BENCH_HEAP_FILE: options.heapFile } : {}
  const child = track(
    spawn(command, args, {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env, ...sampler },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  let output = ''
  child.stdout?.on('data', (chunk) => (output += chunk))
  child.stderr?.on('data', (chunk) => (output += chunk))
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  const url = `http://127.0.0.1:${options.port}`
  const server: ServerProcess = {
    url,
    pid: child.pid ?? 0,
    ...(options.heapFile ? { heapFile: options.heapFile } : {}),
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(killer)
    },
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${options.args.join(' ')} exited before it was ready:\n${output}`)
    }
    const status = await fetch(url + options.readyPath)
      .then((response) => response.status)
      .catch(() => 0)
    if (status === 200) return server
    if (Date.now() > deadline) {
      await server.stop()
      throw new Error(`${options.args.join(' ')} was not ready in time:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** `TOKEND_*` variables of the bench's own environment reach every tokend it starts (scenarios override them). */
function passedThrough(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[0].startsWith('TOKEND_')),
  )
}

const SAMPLER = pathToFileURL(join(repoRoot, 'test/bench/heap-sampler.ts')).href

/** `pnpm bench --source`: tokend from its sources through tsx, as the bench ran it before (no build). */
export const FROM_SOURCE = process.argv.includes('--source')

/**
 * tokend as `pnpm start` runs it: the compiled bundle (dist/main.js, built once by
 * `buildTokend`), not the sources through a TypeScript loader, whose per-closure
 * wrappers production never pays for. Pinned, logging warnings only; ready when
 * /readyz says so.
 */
export function startPinnedTokend(
  env: Record<string, string> & { PORT: string },
  heapFile?: string,
): Promise<ServerProcess> {
  return startPinnedServer({
    core: SERVER_CORE,
    command: process.execPath,
    args: FROM_SOURCE
      ? ['--max-semi-space-size=64', '--conditions=tokend-source', '--import', 'tsx', 'src/main.ts']
      : ['--max-semi-space-size=64', '--enable-source-maps', 'dist/main.js'],
    cwd: join(repoRoot, 'services/auth'),
    env: { ...passedThrough(), LOG_LEVEL: 'warn', HOST: '127.0.0.1', TOKEND_GRPC_PORT: '0', ...env },
    port: Number(env.PORT),
    readyPath: '/readyz',
    ...(heapFile ? { heapFile } : {}),
  })
}

/** Builds dist/main.js as `pnpm start` does (turbo skips it when nothing changed). */
export function buildTokend(): void {
  if (FROM_SOURCE) return
  execFileSync(
    join(repoRoot, 'node_modules/.bin/turbo'),
    ['run', 'build', '--filter=@tokend/auth', '--output-logs=errors-only'],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
  )
}

/**
 * A baseline answering `POST /verify` from a Map of `entries` (token, answer): bare
 * express (bare-server.ts, SPEC §11's P1) or bare node:http (bare-http.ts).
 */
export function startBareServer(
  port: number,
  entries: [string, unknown][],
  kind: 'express' | 'http' = 'express',
  heapFile?: string,
): Promise<ServerProcess> {
  return startPinnedServer({
    core: SERVER_CORE,
    command: process.execPath,
    args: ['--import', 'tsx', kind === 'express' ? 'bare-server.ts' : 'bare-http.ts'],
    cwd: join(repoRoot, 'test/bench'),
    env: { PORT: String(port), BARE_ENTRIES: JSON.stringify(entries) },
    port,
    readyPath: '/healthz',
    ...(heapFile ? { heapFile } : {}),
  })
}

/** P13's peer (better-auth-server.ts) on its own database; it writes its one key to `keyFile`. */
export function startBetterAuth(port: number, databaseUrl: string, keyFile: string): Promise<ServerProcess> {
  return startPinnedServer({
    core: SERVER_CORE,
    command: process.execPath,
    args: ['--import', 'tsx', 'better-auth-server.ts'],
    cwd: join(repoRoot, 'test/bench'),
    env: { PORT: String(port), DATABASE_URL: databaseUrl, BENCH_KEY_FILE: keyFile },
    port,
    readyPath: '/healthz',
  })
}

/** A process's CPU time so far (user + system, every thread), in µs. */
export function cpuMicros(pid: number): number {
  return cpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) * (1_000_000 / CLOCK_TICKS)
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()
