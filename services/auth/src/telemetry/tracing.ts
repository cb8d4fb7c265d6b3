import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Span } from '@opentelemetry/api'
import { VerifyCache } from '../cache/verify-cache.ts'
import type { Tracing } from './hooks.ts'

/**
 * OpenTelemetry for tokend (SPEC §15), loaded by main.ts only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set: the SDK with OTLP/HTTP export of traces (the
 * standard OTEL_* variables tune it: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_BSP_SCHEDULE_DELAY, OTEL_TRACES_SAMPLER…), and these spans:
 *
 * - one server span per HTTP request and per unary gRPC call, child of the caller's W3C
 *   `traceparent` (header or metadata);
 * - `tokend.verify` for every verify, whatever the transport (tokens/verify.ts);
 * - `tokend.cache.lookup` for each cache lookup, with `tokend.cache.hit`;
 * - `pg.query` for each database query made inside a traced operation (not the change
 *   listener's heartbeats and background flushes, which would only be noise).
 *
 * No automatic instrumentation: tokend's own spans are the ones it documents, and
 * nothing hooks module loading.
 */
interface GrpcCall {
  metadata?: { getMap(): Record<string, unknown> }
}

export async function startTracing(): Promise<Tracing> {
  const [api, { NodeSDK }, { OTLPTraceExporter }, pg] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('pg'),
  ])
  const { context, propagation, trace, SpanKind, SpanStatusCode, ROOT_CONTEXT } = api
  const sdk = new NodeSDK({
    serviceName: 'tokend',
    traceExporter: new OTLPTraceExporter(),
    // Traces only: no metrics or logs exporters (metrics are Prometheus's, at /metrics).
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  })
  sdk.start()
  const tracer = trace.getTracer('tokend')

  const fail = (span: Span, error: unknown) => {
    span.recordException(error instanceof Error ? error : String(error))
    span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
  }

  const lookup = VerifyCache.prototype.lookup
  VerifyCache.prototype.lookup = function tracedLookup(this: VerifyCache, digest, load) {
    return tracer.startActiveSpan('tokend.cache.lookup', (span) => {
      const hits = this.stats.hits
      // A hit is answered synchronously (MaybePromise); traced, it is a promise like a miss.
      return Promise.resolve(lookup.call(this, digest, load)).then(
        (record) => {
          span.setAttribute('tokend.cache.hit', this.stats.hits > hits)
          span.end()
          return record
        },
        (error: unknown) => {
          fail(span, error)
          throw error
        },
      )
    })
  }

  // Every query of the pool and the listener goes through pg.Client's `query`.
  const client = pg.default.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }
  const query = client.query
  client.query = function tracedQuery(this: unknown, ...args: unknown[]) {
    const first = args[0] as { text?: unknown; submit?: unknown } | string | undefined
    const parent = context.active()
    if (!trace.getSpan(parent) || (typeof first === 'object' && typeof first?.submit === 'function')) {
      return query.apply(this, args)
    }
    const text = typeof first === 'string' ? first : String(first?.text ?? '')
    // Statements are parameterised: their text holds no credential, and values are never recorded.
    const span = tracer.startSpan(
      'pg.query',
      { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.query.text': text.slice(0, 2000) } },
      parent,
    )
    const last = args.length - 1
    const callback = args[last]
    if (typeof callback === 'function') {
      args[last] = (error: unknown, result: unknown) => {
        if (error) fail(span, error)
        else span.end()
        return callback(error, result)
      }
      return query.apply(this, args)
    }
    return (query.apply(this, args) as Promise<unknown>).then(
      (result) => {
        span.end()
        return result
      },
      (error: unknown) => {
        fail(span, error)
        throw error
      },
    )
  }

  return {
    verify(run) {
      return tracer.startActiveSpan('tokend.verify', (span) =>
        run().then(
          (result) => {
            span.setAttribute('tokend.verify.valid', result.valid)
            if (result.reason) span.setAttribute('tokend.verify.reason', result.reason)
            span.end()
            return result
          },
          (error: unknown) => {
            fail(span, error)
            throw error
          },
        ),
      )
    },
    serve(handler) {
      return (req: IncomingMessage, res: ServerResponse) => {
        const parent = propagation.extract(ROOT_CONTEXT, req.headers)
        const method = req.method ?? 'GET'
        // The path only: a query string may carry input, and input may carry keys.
        const path = (req.url ?? '/').split('?')[0] ?? '/'
        const span = tracer.startSpan(
          method,
          { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
          parent,
        )
        const active = trace.setSpan(parent, span)
        // The body arrives in events of the connection's own context: bound, they run in this request's.
        context.bind(active, req)
        context.bind(active, res)
        res.once('close', () => {
          span.setAttribute('http.response.status_code', res.statusCode)
          if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
          span.end()
        })
        context.with(active, () => handler(req, res))
      }
    },
    grpc(name, service) {
      const traced: Record<string, unknown> = {}
      for (const [method, handler] of Object.entries(service)) {
        if (typeof handler !== 'function') continue
        traced[method] = (call: GrpcCall, callback?: (...args: unknown[]) => void) => {
          const parent = propagation.extract(ROOT_CONTEXT, call.metadata?.getMap() ?? {})
          // A stream lives long: it gets no span of its own, only the caller's context.
          if (typeof callback !== 'function') return context.with(parent, () => handler.call(service, call))
          const span = tracer.startSpan(
            `${name}/${method}`,
            { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': name, 'rpc.method': method } },
            parent,
          )
          const done = (error: { code?: number } | null, ...rest: unknown[]) => {
            if (error) {
              span.setAttribute('rpc.grpc.status_code', error.code ?? 2)
              span.setStatus({ code: SpanStatusCode.ERROR })
            } else span.setAttribute('rpc.grpc.status_code', 0)
            span.end()
            callback(error, ...rest)
          }
          return context.with(trace.setSpan(parent, span), () => handler.call(service, call, done))
        }
      }
      return traced as typeof service
    },
    shutdown: () => sdk.shutdown(),
  }
}
