import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '@tokend/testing'
import type { LoadResult } from './load.ts'
import { CLIENT_CORE, pinnedCommand, track } from './processes.ts'

/** A gRPC load at full speed: tokend.v1.Tokens/Verify or Envoy's Authorization/Check of one key. */
export interface GrpcLoadJob {
  /** host:port of tokend's gRPC server. */
  address: string
  method: 'Verify' | 'Check'
  /** The key verified. */
  token: string
  scopes: string[]
  /** Verify's caller (a key with tokend:verify); Check has none. */
  callerKey: string
  connections: number
  durationS: number
}

/** Runs one gRPC load in a child process pinned to the client core (`grpc-load-worker.ts`). */
export function runGrpcLoad(job: GrpcLoadJob): Promise<LoadResult> {
  const [command, args] = pinnedCommand(CLIENT_CORE, process.execPath, [
    '--import',
    'tsx',
    join(repoRoot, 'test/bench/grpc-load-worker.ts'),
  ])
  const child = track(spawn(command, args, { cwd: join(repoRoot, 'test'), stdio: ['pipe', 'pipe', 'pipe'] }))
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk) => (stdout += chunk))
  child.stderr?.on('data', (chunk) => (stderr += chunk))
  child.stdin?.end(JSON.stringify(job))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(JSON.parse(stdout) as LoadResult)
      else reject(new Error(`gRPC load worker ended with ${signal ?? code}:\n${stderr}`))
    })
  })
}
