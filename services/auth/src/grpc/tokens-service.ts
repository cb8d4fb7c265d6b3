import { once } from 'node:events'
import * as grpc from '@grpc/grpc-js'
import { TRPCError } from '@trpc/server'
import { changeStream, type StreamEvent } from '../changes/change-stream.ts'
import type { Context } from '../context.ts'
import type { Deps } from '../deps.ts'
import { DomainError, InvalidInputError, UnauthenticatedError } from '../errors.ts'
import type { Trust } from '../http/request-meta.ts'
import type { Principal } from '../principal.ts'
import { answerVerify, type VerifyInput, type VerifyResult, verifyInput } from '../tokens/verify.ts'
import { nulPath } from '../validation.ts'
import { grpcContext, grpcError } from './errors.ts'
import type { ChangeEvent } from './generated/tokend/v1/ChangeEvent.ts'
import type { TokensHandlers } from './generated/tokend/v1/Tokens.ts'
import type { VerifyRequest__Output } from './generated/tokend/v1/VerifyRequest.ts'
import type { VerifyResponse } from './generated/tokend/v1/VerifyResponse.ts'

/** As many verifies as one tRPC batch may hold. */
const MAX_BATCH = 100

/**
 * `tokend.v1.Tokens`: another transport for token.verify and the change stream. Each
 * call parses its whole request into `VerifyInput`s first (the procedure's own schema
 * and NUL check), then authenticates the caller and calls `answerVerify`, as tRPC,
 * REST and the fast path do.
 */
export function tokensService(deps: Deps, trust: Trust): TokensHandlers {
  return {
    Verify(call, callback) {
      void unary(deps, trust, call, callback, 'Verify', async (ctx) => {
        const input = parseVerifyRequest(call.request)
        return toVerifyResponse(await answerVerify(deps, await callerOf(ctx), input))
      })
    },
    BatchVerify(call, callback) {
      void unary(deps, trust, call, callback, 'BatchVerify', async (ctx) => {
        const requests = call.request.requests
        if (requests.length > MAX_BATCH) {
          throw new InvalidInputError(`a batch holds at most ${MAX_BATCH} requests`, 'requests')
        }
        const inputs = requests.map(parseVerifyRequest)
        const caller = await callerOf(ctx)
        const results = await Promise.all(inputs.map((input) => answerVerify(deps, caller, input)))
        return { results: results.map(toVerifyResponse) }
      })
    },
    WatchChanges(call) {
      void watchChanges(deps, grpcContext(deps, trust, call), call)
    },
  }
}

async function unary<T>(
  deps: Deps,
  trust: Trust,
  call: grpc.ServerUnaryCall<unknown, T>,
  callback: grpc.sendUnaryData<T>,
  method: string,
  work: (ctx: Context) => Promise<T>,
): Promise<void> {
  const ctx = grpcContext(deps, trust, call)
  try {
    callback(null, await work(ctx))
  } catch (cause) {
    callback(grpcError(deps, cause, { path: `tokend.v1.Tokens/${method}`, requestId: ctx.meta.requestId ?? '' }))
  }
}

async function callerOf(ctx: Context): Promise<Principal> {
  const caller = await ctx.authenticate()
  if (!caller) throw new UnauthenticatedError()
  return caller
}

/**
 * A `VerifyRequest` as token.verify's input. proto3 cannot tell an empty string or list
 * from an absent one, so empty means "no requirement", as an absent field does in JSON.
 */
export function parseVerifyRequest(request: VerifyRequest__Output): VerifyInput {
  const require = {
    ...(request.scopes.length > 0 && { scopes: request.scopes }),
    ...(request.environment !== '' && { environment: request.environment }),
    ...(request.role !== '' && { role: request.role }),
    ...(request.audience !== '' && { audience: request.audience }),
  }
  const raw = {
    token: request.token,
    ...(request.clientIp !== '' && { clientIp: request.clientIp }),
    ...(Object.keys(require).length > 0 && { require }),
    ...(request.ratelimit && {
      ratelimit: {
        name: request.ratelimit.name,
        limit: request.ratelimit.limit,
        windowMs: request.ratelimit.windowMs,
      },
    }),
    // proto3 `optional`: set only when the caller sent it (unset spends the default 1).
    ...(request._cost === 'cost' && { cost: request.cost }),
  }
  const nul = nulPath(raw)
  if (nul !== null) throw new InvalidInputError('text must not contain NUL characters (\\u0000)', nul)
  const parsed = verifyInput.safeParse(raw)
  if (!parsed.success) throw new TRPCError({ code: 'BAD_REQUEST', message: 'invalid input', cause: parsed.error })
  return parsed.data
}

/** A `VerifyResult` on the wire: fields a result lacks keep proto3's defaults. */
export function toVerifyResponse(result: VerifyResult): VerifyResponse {
  if (!result.valid) {
    return {
      valid: false,
      reason: result.reason,
      missingScopes: result.missingScopes ?? [],
      retryAfterMs: result.retryAfterMs ?? 0,
      ...(result.remaining !== undefined && { remaining: result.remaining }),
    }
  }
  return {
    valid: true,
    kind: result.kind,
    tokenId: result.tokenId,
    accountId: result.accountId,
    environment: result.environment,
    role: result.role ?? '',
    scopes: result.scopes,
    name: result.name,
    expiresAt: result.expiresAt === null ? null : timestamp(result.expiresAt),
    userId: result.kind === 'session' ? result.userId : '',
    resource: result.kind === 'direct' ? result.resource : null,
    metaJson: result.kind === 'access_key' && result.meta ? JSON.stringify(result.meta) : '',
    ...(result.kind === 'access_key' && result.remaining !== undefined && { remaining: result.remaining }),
  }
}

function timestamp(iso: string) {
  const ms = Date.parse(iso)
  const seconds = Math.floor(ms / 1000)
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 }
}

/**
 * The change stream (`changeStream`, the one tRPC's token.changes serves) until the
 * caller cancels, the replica loses its channel, or the caller's own credential dies.
 */
async function watchChanges(
  deps: Deps,
  ctx: Context,
  call: grpc.ServerWritableStream<unknown, ChangeEvent>,
): Promise<void> {
  const cancelled = new AbortController()
  call.on('cancelled', () => cancelled.abort())
  const where = { path: 'tokend.v1.Tokens/WatchChanges', requestId: ctx.meta.requestId ?? '' }
  try {
    const principal = await callerOf(ctx)
    const events = changeStream(deps.changes, { principal, recheck: ctx.recheck }, cancelled.signal)
    for await (const event of events) {
      if (!call.write(toChangeEvent(event))) await once(call, 'drain', { signal: cancelled.signal })
    }
    call.end()
  } catch (cause) {
    if (cancelled.signal.aborted) return
    // Anything but a refusal (the channel lost, the database gone) tells the client to reconnect.
    const status =
      cause instanceof DomainError
        ? grpcError(deps, cause, where)
        : { code: grpc.status.UNAVAILABLE, details: (cause as Error).message ?? 'the change stream ended' }
    call.emit('error', status)
  }
}

function toChangeEvent(event: StreamEvent): ChangeEvent {
  switch (event.type) {
    case 'ready':
      return { ready: { scope: event.scope } }
    case 'key':
      return { key: { digest: event.digest, accountId: event.accountId ?? '', tokenId: event.tokenId ?? '' } }
    case 'account':
      return { account: { accountId: event.accountId } }
  }
}
