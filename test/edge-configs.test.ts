import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { configSchema } from '@tokend/auth'
import { Caller, freePort, type RunningTokend, repoRoot, startTokend } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { CheckResponse__Output } from '../services/auth/src/grpc/generated/envoy/service/auth/v3/CheckResponse.ts'
import { call, tokendClients } from '../services/auth/test/grpc-client.ts'

/**
 * The shipped Traefik and Envoy configs for voice-api, which no proxy runs here: each
 * middleware's and route's requests are sent to a real tokend as Traefik and Envoy send
 * them (Envoy's with a client built from proto/envoy), and the settings tokend relies on
 * are checked.
 */
let tokend: RunningTokend
let grpcPort: number
let clients: ReturnType<typeof tokendClients>
let reader: string
let writer: string
const defaults = configSchema.parse({})

beforeAll(async () => {
  grpcPort = await freePort()
  tokend = await startTokend({ TOKEND_GRPC_PORT: String(grpcPort) })
  clients = tokendClients(`127.0.0.1:${grpcPort}`)
  const operator = new Caller(tokend.url, tokend.bootstrapKey)
  const issue = async (scopes: string[]) =>
    (await operator.mutation('token.issue', { name: 'caller', environment: 'live', scopes })).body.result.data.token
  reader = await issue(['recordings:read'])
  writer = await issue(['recordings:read', 'recordings:write'])
}, 120_000)

afterAll(async () => {
  clients?.close()
  await tokend?.stop()
})

const load = async (path: string) => parse(await readFile(join(repoRoot, 'infra', path), 'utf8'))

describe('infra/traefik/dynamic.yaml', () => {
  it('asks tokend about each route as Traefik ForwardAuth does, and copies the principal headers', async () => {
    const config = await load('traefik/dynamic.yaml')
    const middlewares = config.http.middlewares as Record<
      string,
      { forwardAuth: { address: string; authResponseHeaders: string[] } }
    >
    for (const router of Object.values(config.http.routers) as Array<{ middlewares: string[]; service: string }>) {
      expect(config.http.services[router.service]).toBeDefined()
      for (const name of router.middlewares) expect(middlewares[name]).toBeDefined()
    }
    const send = (address: URL, key: string) =>
      fetch(`${tokend.url}${address.pathname}${address.search}`, {
        headers: {
          authorization: `Bearer ${key}`,
          'x-forwarded-method': 'GET',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'voice.example',
          'x-forwarded-uri': '/v1/recordings',
        },
      })
    for (const [name, { forwardAuth }] of Object.entries(middlewares)) {
      const address = new URL(forwardAuth.address)
      expect(address.host).toBe(`tokend:${defaults.PORT}`)
      const allowed = await send(address, writer)
      expect(allowed.status, name).toBe(200)
      for (const header of forwardAuth.authResponseHeaders) expect(allowed.headers.get(header), header).toBeTruthy()
      const expected = name === 'tokend-read' ? 200 : 403
      expect((await send(address, reader)).status, name).toBe(expected)
    }
  })
})

describe('infra/envoy/envoy.yaml', () => {
  it('sends Check over gRPC to tokend’s gRPC port and denies when tokend cannot decide', async () => {
    const config = await load('envoy/envoy.yaml')
    const cluster = config.static_resources.clusters.find((c: { name: string }) => c.name === 'tokend_grpc')
    const endpoint = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    expect(endpoint.port_value).toBe(defaults.TOKEND_GRPC_PORT)
    expect(cluster.health_checks[0].grpc_health_check.service_name).toBe('envoy.service.auth.v3.Authorization')
    const filter = httpManager(config).http_filters.find(
      (f: { name: string }) => f.name === 'envoy.filters.http.ext_authz',
    )
    expect(filter.typed_config).toMatchObject({
      transport_api_version: 'V3',
      failure_mode_allow: false,
      grpc_service: { envoy_grpc: { cluster_name: 'tokend_grpc' } },
    })
  })

  it('each route’s context_extensions make the Check answers voice-api needs', async () => {
    const routes = httpManager(await load('envoy/envoy.yaml')).route_config.virtual_hosts[0].routes
    const checked = routes.filter(
      (route: any) => route.typed_per_filter_config?.['envoy.filters.http.ext_authz']?.check_settings,
    )
    expect(checked).toHaveLength(2)
    const check = (key: string, contextExtensions: Record<string, string>) =>
      call<object, CheckResponse__Output>(clients.authorization.Check, clients.authorization, {
        attributes: {
          request: { http: { method: 'GET', path: '/v1/recordings', headers: { authorization: `Bearer ${key}` } } },
          contextExtensions,
        },
      })
    for (const route of checked) {
      const extensions = route.typed_per_filter_config['envoy.filters.http.ext_authz'].check_settings.context_extensions
      expect((await check(writer, extensions)).status?.code).toBe(0)
      const readOnly = extensions.scopes === 'recordings:read'
      expect((await check(reader, extensions)).status?.code).toBe(readOnly ? 0 : 7)
    }
  })
})

function httpManager(config: any) {
  return config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config
}
