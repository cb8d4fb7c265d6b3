import { type LoadResult, runLoadWorker } from './load.ts'

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
  return runLoadWorker('grpc-load-worker.ts', job)
}
