import type { ChangeEvent } from './change-events.ts'
import type { ChangeListener } from './change-listener.ts'

/** What client caches hold are access keys: they hear of key and account changes only. */
export type StreamEvent = { type: 'ready' } | Extract<ChangeEvent, { type: 'key' | 'account' }>

/**
 * This replica's change events as an async stream for remote caches (the client's).
 * It opens with `ready` once the replica is itself subscribed, and ends with an error
 * the moment the replica's channel is lost: a client must then flush its cache and
 * stop trusting it until a new stream says `ready`.
 */
export async function* changeStream(
  listener: ChangeListener,
  signal: AbortSignal | undefined,
): AsyncGenerator<StreamEvent> {
  const queue: StreamEvent[] = []
  let lost = false
  let wake: (() => void) | undefined
  const onChange = (event: ChangeEvent) => {
    if (event.type !== 'key' && event.type !== 'account') return
    queue.push(event)
    wake?.()
  }
  const onState = () => {
    if (listener.state !== 'subscribed') lost = true
    wake?.()
  }
  const onAbort = () => wake?.()
  // Listen before saying `ready`, so nothing falls between the two.
  listener.on('change', onChange)
  listener.on('state', onState)
  signal?.addEventListener('abort', onAbort)
  try {
    if (listener.state !== 'subscribed') throw new Error('the change channel is not subscribed')
    yield { type: 'ready' }
    while (!signal?.aborted) {
      if (lost) throw new Error('the change channel was lost')
      const event = queue.shift()
      if (event) {
        yield event
        continue
      }
      await new Promise<void>((resolve) => (wake = resolve))
      wake = undefined
    }
  } finally {
    listener.off('change', onChange)
    listener.off('state', onState)
    signal?.removeEventListener('abort', onAbort)
  }
}
