import cluster from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'

/**
 * /metrics of a cluster (TOKEND_WORKERS > 1) is every worker's metrics aggregated by the
 * primary with prom-client's AggregatorRegistry: counters and histograms summed, gauges
 * summed too (cache entries, pool connections, `tokend_change_channel_up` = workers
 * subscribed) except where prom-client's default metrics say otherwise. Whichever worker
 * a scrape reaches asks the primary, which asks every worker.
 */
export const METRICS_REQUEST = 'tokend:metrics-request'
export const METRICS_RESPONSE = 'tokend:metrics-response'

interface MetricsResponse {
  type: typeof METRICS_RESPONSE
  id: number
  text?: string
  error?: string
}

/** The workers did not give the primary their metrics in time (or at all): a failed scrape, not a bug. */
export class ClusterMetricsError extends Error {}

const ASK_TIMEOUT_MS = 10_000
let asked = 0
const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>()

/** What /metrics answers: this process's registry, or in a cluster worker, every worker's. */
export function exposition(registry: Registry): Promise<string> {
  return cluster.isWorker ? askPrimary() : registry.metrics()
}

/** In a worker: lets the primary's AggregatorRegistry collect `registry`. */
export function shareMetrics(registry: Registry): void {
  // Constructing one installs prom-client's listener for the primary's requests.
  new AggregatorRegistry()
  AggregatorRegistry.setRegistries([registry])
  process.on('message', (message: MetricsResponse) => {
    if (message?.type !== METRICS_RESPONSE) return
    const request = waiting.get(message.id)
    waiting.delete(message.id)
    if (message.error !== undefined) request?.reject(new ClusterMetricsError(`cluster metrics: ${message.error}`))
    else request?.resolve(message.text ?? '')
  })
}

function askPrimary(): Promise<string> {
  const id = asked++
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id)
      reject(new ClusterMetricsError('cluster metrics: the primary did not answer'))
    }, ASK_TIMEOUT_MS)
    const settle =
      <T>(done: (value: T) => void) =>
      (value: T) => {
        clearTimeout(timer)
        done(value)
      }
    waiting.set(id, { resolve: settle(resolve), reject: settle(reject) })
    process.send?.({ type: METRICS_REQUEST, id })
  })
}

/** In the primary: answers workers' requests for the aggregate. */
export function serveClusterMetrics(): (
  worker: { send(message: MetricsResponse): void; isConnected(): boolean },
  message: unknown,
) => void {
  const aggregator = new AggregatorRegistry()
  return (worker, message) => {
    const request = message as { type?: string; id?: number }
    if (request?.type !== METRICS_REQUEST || typeof request.id !== 'number') return
    const id = request.id
    // A worker that went away meanwhile needs no answer (sending would throw).
    const answer = (response: MetricsResponse) => worker.isConnected() && worker.send(response)
    aggregator.clusterMetrics().then(
      (text) => answer({ type: METRICS_RESPONSE, id, text }),
      (error: Error) => answer({ type: METRICS_RESPONSE, id, error: error.message }),
    )
  }
}
