import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Where the code meets OpenTelemetry, without importing it: `tracing` stays undefined
 * unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and then main.ts loads tracing.ts (and
 * OpenTelemetry with it) and sets it. Unset, a verify pays one check of this binding.
 */
export interface Tracing {
  /** Runs one verify inside a `tokend.verify` span, noting its answer. */
  verify<T extends { valid: boolean; reason?: string }>(run: () => Promise<T>): Promise<T>
  /** Wraps the HTTP server's handler: a server span per request, the caller's `traceparent` its parent. */
  serve(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
  ): (req: IncomingMessage, res: ServerResponse) => void
  /**
   * Wraps a gRPC service's handlers: a server span per unary call (named
   * `service/Method`), the caller's `traceparent` metadata its parent.
   */
  grpc<Service extends object>(name: string, service: Service): Service
  /** Sends what is still buffered. */
  shutdown(): Promise<void>
}

export let tracing: Tracing | undefined

export function setTracing(started: Tracing | undefined): void {
  tracing = started
}
