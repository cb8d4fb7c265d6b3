import { ForbiddenError, UnauthenticatedError } from '../errors.ts'
import type { Principal } from '../principal.ts'
import { mayVerify } from '../tokens/verify.ts'
import type { ChangeEvent } from './change-events.ts'
import type { ChangeListener } from './change-listener.ts'

/**
 * What a subscriber hears. `ready` says which events follow: every account's (`all`,
 * for the operator account) or one account's, so a client cache knows which answers
 * it may keep. Key events carry the key's account and id for the console.
 */
export type StreamEvent =
  | { type: 'ready'; scope: string }
  | { type: 'key'; digest: string; accountId?: string | undefined; tokenId?: string | undefined }
  | { type: 'account'; accountId: string }

// setTimeout fires at once for longer waits; a later expiry is waited for in steps.
const MAX_TIMER_MS = 2 ** 31 - 1

/** Every account's events: the stream scope of operator-account subscribers. */
export const ALL_ACCOUNTS = 'all'

/**
 * Who may follow the change stream and what of it they see: keys holding
 * `tokend:verify` (client caches) and signed-in people (the console); the operator
 * account hears of every account, any other subscriber of its own account only.
 */
export function streamScope(principal: Principal): string {
  if (principal.kind === 'access_key' && !mayVerify(principal)) {
    throw new ForbiddenError('the change stream needs the tokend:verify scope (or a session)', ['tokend:verify'])
  }
  return principal.operator ? ALL_ACCOUNTS : principal.accountId
}

export interface Subscriber {
  principal: Principal
  /** Authenticates the subscriber's own credential again, past every cache (null: it is no longer valid). */
  recheck(): Promise<Principal | null>
}

/**
 * This replica's change events as an async stream for remote caches and the console.
 * It opens with `ready` once the replica is itself subscribed, and ends with an error
 * the moment the replica's channel is lost — a client must then flush its cache and
 * stop trusting it until a new stream says `ready` — or the moment the subscriber's
 * own credential stops being valid (revoked, disabled, expired, its account suspended,
 * its session ended): no credential outlives its revocation on a stream either.
 */
export async function* changeStream(
  listener: ChangeListener,
  subscriber: Subscriber,
  signal: AbortSignal | undefined,
): AsyncGenerator<StreamEvent> {
  const { principal } = subscriber
  const scope = streamScope(principal)
  const queue: StreamEvent[] = []
  let ended: Error | undefined
  let wake: (() => void) | undefined
  const end = (error: Error) => {
    ended ??= error
    wake?.()
  }
  const onChange = (event: ChangeEvent) => {
    if (concernsSubscriber(principal, event)) {
      // The replica's own cache has already dropped the entry (app.ts listens first).
      subscriber.recheck().then(
        (still) => {
          if (!still) end(new UnauthenticatedError('the credential that opened this stream is no longer valid'))
        },
        (error: Error) => end(error),
      )
    }
    if (event.type !== 'key' && event.type !== 'account') return
    const accountId = event.accountId
    // A key event without its account (an older replica's) tells a digest only: anyone may hear it.
    if (scope !== ALL_ACCOUNTS && accountId !== undefined && accountId !== scope) return
    queue.push(
      event.type === 'key'
        ? { type: 'key', digest: event.digest, accountId, tokenId: event.tokenId }
        : { type: 'account', accountId: event.accountId },
    )
    wake?.()
  }
  const onState = () => {
    if (listener.state !== 'subscribed') end(new Error('the change channel was lost'))
  }
  const onAbort = () => wake?.()
  let expiry: NodeJS.Timeout | undefined
  const expireAt = (at: number) => {
    const wait = at - Date.now()
    expiry = setTimeout(
      () =>
        wait > MAX_TIMER_MS
          ? expireAt(at)
          : end(new UnauthenticatedError('the credential that opened this stream expired')),
      Math.min(wait, MAX_TIMER_MS),
    )
  }
  if (principal.expiresAt !== null) expireAt(Date.parse(principal.expiresAt))
  // Listen before saying `ready`, so nothing falls between the two.
  listener.on('change', onChange)
  listener.on('state', onState)
  signal?.addEventListener('abort', onAbort)
  try {
    if (listener.state !== 'subscribed') throw new Error('the change channel is not subscribed')
    yield { type: 'ready', scope }
    while (!signal?.aborted) {
      if (ended) throw ended
      const event = queue.shift()
      if (event) {
        yield event
        continue
      }
      await new Promise<void>((resolve) => (wake = resolve))
      wake = undefined
    }
  } finally {
    clearTimeout(expiry)
    listener.off('change', onChange)
    listener.off('state', onState)
    signal?.removeEventListener('abort', onAbort)
  }
}

/** Whether `event` may have ended the subscriber's own credential. */
function concernsSubscriber(principal: Principal, event: ChangeEvent): boolean {
  switch (event.type) {
    case 'key':
      return principal.kind === 'access_key' && (event.tokenId === undefined || event.tokenId === principal.tokenId)
    case 'account':
      return event.accountId === principal.accountId
    case 'session':
      return principal.kind === 'session' && event.sessionId === principal.sessionId
    case 'user':
      return principal.kind === 'session' && event.userId === principal.userId
    default:
      return false
  }
}
