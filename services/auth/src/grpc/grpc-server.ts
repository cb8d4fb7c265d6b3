import * as grpc from '@grpc/grpc-js'
import { ReflectionService } from '@grpc/reflection'
import { HealthImplementation } from 'grpc-health-check'
import type { ChannelState } from '../changes/change-listener.ts'
import type { Deps } from '../deps.ts'
import type { Trust } from '../http/request-meta.ts'
import { tracing } from '../telemetry/hooks.ts'
import { authorizationService } from './ext-authz.ts'
import { loadProtos } from './protos.ts'
import { tokensService } from './tokens-service.ts'

export interface GrpcServer {
  /** `host:port` as bound. */
  readonly address: string
  /** Stops accepting calls and waits for the ones in flight, up to `graceMs`, then cuts the rest. */
  stop(graceMs: number): Promise<void>
}

const SERVICES = ['tokend.v1.Tokens', 'envoy.service.auth.v3.Authorization']

/**
 * tokend's gRPC port (SPEC §12): `tokend.v1.Tokens`, Envoy's external authorization, the standard health service
 * (SERVING while the replica hears change events, as /readyz) and server reflection.
 */
export async function startGrpcServer(deps: Deps, trust: Trust, host: string, port: number): Promise<GrpcServer> {
  const protos = loadProtos()
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 1024 * 1024,
    // Change streams live long: find peers that vanished without closing.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  })
  const tokens = tokensService(deps, trust)
  const authorization = authorizationService(deps, trust)
  server.addService(protos.tokens, tracing ? tracing.grpc('tokend.v1.Tokens', tokens) : tokens)
  server.addService(
    protos.authorization,
    tracing ? tracing.grpc('envoy.service.auth.v3.Authorization', authorization) : authorization,
  )
  new ReflectionService(protos.definition).addToServer(server)
  const health = new HealthImplementation()
  const setHealth = (state: ChannelState) => {
    const status = state === 'subscribed' ? 'SERVING' : 'NOT_SERVING'
    for (const service of ['', ...SERVICES]) health.setStatus(service, status)
  }
  setHealth(deps.changes.state)
  deps.changes.on('state', setHealth)
  health.addToServer(server)
  const hostPart = host.includes(':') ? `[${host}]` : host
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${hostPart}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(new Error(`cannot listen for gRPC on ${hostPart}:${port}: ${error.message}`)) : resolve(bound),
    ),
  ).catch((error: Error) => {
    deps.changes.off('state', setHealth)
    server.forceShutdown()
    throw error
  })
  return {
    address: `${hostPart}:${bound}`,
    async stop(graceMs) {
      deps.changes.off('state', setHealth)
      const force = setTimeout(() => server.forceShutdown(), graceMs)
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()))
      clearTimeout(force)
    },
  }
}
