import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..')

export interface ServiceProcess {
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string
  /** The base URL the service announced. */
  url: string
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Runs tokend's src/main.ts through tsx, as `pnpm start` does, and resolves once it
 * logs that it listens (the workspace packages from source too: `tokend-source`).
 * Node loads tsx in-process (`--import tsx`) so that the
 * signals a test sends reach the service itself, SIGKILL included.
 * Its environment is only what `env` gives, plus PATH.
 */
export function startTokendProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServiceProcess> {
  return startService(
    process.execPath,
    ['--max-semi-space-size=64', '--conditions=tokend-source', '--import', 'tsx', 'src/main.ts'],
    {
      cwd: join(repoRoot, 'services/auth'),
      // gRPC's default port is fixed: a test that uses gRPC passes a free one.
      env: { LOG_LEVEL: 'info', HOST: '127.0.0.1', TOKEND_GRPC_PORT: '0', ...env },
      ready: /"url":"(http:\/\/[^"]+)","msg":"tokend listening"/,
      timeoutMs,
    },
  )
}

/**
 * Runs voice-api's src/main.ts through tsx (in-process, as for tokend) and resolves
 * once it logs that it listens. Its environment is only what `env` gives, plus PATH.
 */
export function startVoiceApiProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServiceProcess> {
  const serviceDir = join(repoRoot, 'services/voice-api')
  return startService(process.execPath, ['--conditions=tokend-source', '--import', 'tsx', 'src/main.ts'], {
    cwd: serviceDir,
    env: { LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env },
    ready: /"url":"(http:\/\/[^"]+)".*"msg":"voice-api listening"/,
    timeoutMs,
  })
}

/** Spawns a service and resolves when its output matches `ready` (group 1: its URL). */
export function startService(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; ready: RegExp; timeoutMs: number },
): Promise<ServiceProcess> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk) => (output += chunk))
  child.stderr?.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return exited
  }
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const match = options.ready.exec(output)
      if (match?.[1]) {
        clearInterval(timer)
        clearTimeout(deadline)
        resolve({ child, output: () => output, url: match[1], stop })
      }
    }, 25)
    const fail = (why: string) => {
      clearInterval(timer)
      child.kill('SIGKILL')
      reject(new Error(`${why}:\n${output}`))
    }
    // Cleared once the service is up: it must not kill a service that has run that long.
    const deadline = setTimeout(() => fail('did not start in time'), options.timeoutMs).unref()
    void exited.then((code) => fail(`exited with ${code}`))
    child.on('error', (error) => fail(`could not run ${command}: ${error.message}`))
  })
}
