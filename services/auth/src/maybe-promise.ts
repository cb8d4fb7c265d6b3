/**
 * A value now, or later. The verify pipeline returns these so that a cache hit —
 * nearly every verify — is answered in the same turn of the event loop, without a
 * promise or a microtask; a step that must wait (a database load, a rate limit, a JWT)
 * returns a promise, and everything after it runs when it settles. Callers that are
 * async anyway simply `await` the result.
 *
 * A step written this way may throw synchronously where an async function would have
 * rejected: code that calls one outside an async function handles both.
 */
export type MaybePromise<T> = T | Promise<T>

export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return value instanceof Promise
}

/** `next(value)`, now if `value` is here, else when it arrives. */
export function andThen<T, U>(value: MaybePromise<T>, next: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromise(value) ? value.then(next) : next(value)
}
