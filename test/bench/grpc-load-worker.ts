import { join } from 'node:path'
import { text } from 'node:stream/consumers'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { repoRoot } from '@tokend/testing'
import type { GrpcLoadJob } from './grpc-load.ts'
import type { LoadResult } from './load.ts'
import { summarize } from './stats.ts'

/**
 * Reads a GrpcLoadJob as JSON on stdin, runs it, prints a LoadResult as JSON on stdout:
 * one channel (one HTTP/2 connection) per connection, one call in flight on each, as
 * autocannon does over HTTP/1.1. A call that fails or answers anything but an allow
 * counts as non-2xx.
 */
const job = JSON.parse(await text(process.stdin)) as GrpcLoadJob
const definition = protoLoader.loadSync(['tokend/v1/tokens.proto', 'envoy/service/auth/v3/external_auth.proto'], {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [join(repoRoot, 'proto')],
})
const loaded = grpc.loadPackageDefinition(definition) as any
const Service = job.method === 'Verify' ? loaded.tokend.v1.Tokens : loaded.envoy.service.auth.v3.Authorization
const metadata = new grpc.Metadata()
if (job.method === 'Verify') metadata.set('authorization', `Bearer ${job.callerKey}`)
const request =
  job.method === 'Verify'
    ? { token: job.token, scopes: job.scopes }
    : {
        attributes: {
          request: {
            http: { method: 'GET', path: '/v1/recordings', headers: { authorization: `Bearer ${job.token}` } },
          },
          contextExtensions: { scopes: job.scopes.join(',') },
        },
      }
const allowed = (answer: any) => (job.method === 'Verify' ? answer.valid === true : answer.status?.code === 0)

const clients = Array.from(
  { length: job.connections },
  // A channel of its own for each client: grpc-js shares one between clients with equal options.
  (_, i) => new Service(job.address, grpc.credentials.createInsecure(), { 'grpc.channel_id': i }),
)
const latencies: number[] = []
let failed = 0
let errors = 0
const started = performance.now()
const deadline = started + job.durationS * 1000
await Promise.all(
  clients.map(async (client) => {
    const method = client[job.method].bind(client)
    while (performance.now() < deadline) {
      const sent = performance.now()
      await new Promise<void>((resolve) =>
        method(request, metadata, (error: grpc.ServiceError | null, answer: any) => {
          if (error) errors++
          else if (!allowed(answer)) failed++
          latencies.push(performance.now() - sent)
          resolve()
        }),
      )
    }
  }),
)
const durationS = (performance.now() - started) / 1000
for (const client of clients) client.close()
const result: LoadResult = {
  requests: latencies.length,
  durationS,
  rps: latencies.length / durationS,
  statusCodes: { ok: latencies.length - failed - errors, denied: failed, failed: errors },
  non2xx: failed,
  errors,
  timeouts: 0,
  latency: summarize(latencies),
  bodiesUsed: 0,
}
process.stdout.write(JSON.stringify(result))
