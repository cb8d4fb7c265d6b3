import type { IncomingMessage } from 'node:http'
import * as grpc from '@grpc/grpc-js'
import type { TRPCError } from '@trpc/server'
import { type Context, createContextInner } from '../context.ts'
import type { Deps } from '../deps.ts'
import { reportError } from '../http/report.ts'
import { requestMeta, type Trust } from '../http/request-meta.ts'
import { describeError, toTRPCError } from '../trpc.ts'

type TRPCCode = TRPCError['code']

/** tRPC's codes (the one map from domain errors, in trpc.ts) as gRPC status codes. */
const STATUS_OF: Partial<Record<TRPCCode, grpc.status>> = {
  PARSE_ERROR: grpc.status.INVALID_ARGUMENT,
  BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  PAYLOAD_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  CONFLICT: grpc.status.FAILED_PRECONDITION,
  TOO_MANY_REQUESTS: grpc.status.RESOURCE_EXHAUSTED,
  SERVICE_UNAVAILABLE: grpc.status.UNAVAILABLE,
}

/**
 * An error as a gRPC status: the status code, tokend's message, and its stable reason
 * as `tokend-reason` trailing metadata (with `retry-after-ms` for a rate limit).
 * Reported as on every other transport: unexpected errors are logged and counted.
 */
export function grpcError(
  deps: Pick<Deps, 'logger' | 'metrics'>,
  cause: unknown,
  where: { path: string; requestId: string },
): Partial<grpc.StatusObject> {
  const error = toTRPCError(cause)
  reportError(deps, error, where)
  const { reason, message, retryAfterMs } = describeError(error)
  const metadata = new grpc.Metadata()
  metadata.set('tokend-reason', reason)
  if (retryAfterMs !== undefined) metadata.set('retry-after-ms', String(retryAfterMs))
  return { code: STATUS_OF[error.code] ?? grpc.status.INTERNAL, details: message, metadata }
}

const REQUEST_ID = /^[\w.:-]{1,128}$/
let calls = 0

/**
 * The context of a gRPC call, as `createContext` makes one for HTTP: the caller's
 * credential from `authorization` metadata, its address (the peer, or
 * `x-forwarded-for` from a trusted proxy, read by the same `requestMeta`).
 */
export function grpcContext(
  deps: Deps,
  trust: Trust,
  call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPeer'>,
): Context {
  const given = call.metadata.get('x-request-id')[0]
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : `grpc-${(++calls).toString(36)}`
  const remoteAddress = peerAddress(call.getPeer())
  const headers = {
    'x-forwarded-for': text(call.metadata, 'x-forwarded-for'),
    'user-agent': text(call.metadata, 'user-agent'),
  }
  // The shape of an HTTP request that requestMeta (and proxy-addr under it) reads.
  const req = { headers, socket: { remoteAddress }, connection: { remoteAddress } } as unknown as IncomingMessage
  return createContextInner(deps, requestMeta(req, { id, trust }), text(call.metadata, 'authorization'))
}

function text(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0]
  return typeof value === 'string' ? value : undefined
}

/** `ipv4:127.0.0.1:5000`, `[::1]:5000` or `127.0.0.1:5000` → the address alone. */
function peerAddress(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '')
  const bracketed = /^\[([^\]]+)\]/.exec(bare)
  if (bracketed) return bracketed[1] as string
  const colon = bare.lastIndexOf(':')
  return colon > 0 && bare.indexOf(':') === colon ? bare.slice(0, colon) : bare
}
