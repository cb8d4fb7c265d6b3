import { createRequire } from 'node:module'

/** A W3C trace context `traceparent` header: version 00, trace id, parent id, flags. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/

/** Whether `value` is a well-formed `traceparent` (anything else is never sent on). */
export function isTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT.test(value)
}

type OtelApi = typeof import('@opentelemetry/api')
let api: OtelApi | null | undefined

/**
 * The `traceparent` of the active OpenTelemetry span, when the application has
 * `@opentelemetry/api` installed (an optional peer) and a span is active; otherwise
 * undefined. Loaded on first use only, synchronously, and never required.
 */
export function activeTraceparent(): string | undefined {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as OtelApi
    } catch {
      api = null
    }
  }
  if (!api) return undefined
  const span = api.trace.getSpanContext(api.context.active())
  if (!span || !api.isSpanContextValid(span)) return undefined
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}
