import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { configSchema, loadConfig as loadTokendConfig } from '@tokend/auth'
import { generateKey } from '@tokend/keys'
import { repoRoot } from '@tokend/testing'
import { loadConfig as loadVoiceApiConfig, configSchema as voiceApiSchema } from '@tokend/voice-api/config'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'

/**
 * No Docker engine or cluster runs these files here, so they are checked against the
 * service itself: every variable given to tokend is one it reads, and every port, probe
 * and health check points at what tokend serves. test/nginx.test.ts runs the same
 * topology with real processes.
 */

const infra = join(repoRoot, 'infra')
const tokendVariables = new Set(Object.keys(configSchema.shape))
const tokendDefaultPort = String(configSchema.parse({}).PORT)
const tokendGrpcPort = String(configSchema.parse({}).TOKEND_GRPC_PORT)
const voiceApiVariables = new Set(Object.keys(voiceApiSchema.shape))
/** Read by compose.yaml itself for interpolation, never handed to a service as such. */
const composeOnlyVariables = new Set(['POSTGRES_PASSWORD'])
/** tokend's drain on SIGTERM (SHUTDOWN_GRACE_MS in services/auth/src/app.ts). */
const tokendDrainSeconds = 10

type Env = Record<string, string>
interface ComposeService {
  image?: string
  build?: { context: string; dockerfile: string; args?: Record<string, string> }
  environment?: Env
  volumes?: string[]
  ports?: string[]
  secrets?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  stop_grace_period?: string
}

const read = (path: string) => readFile(join(infra, path), 'utf8')

/** `http://host:port/path` inside a health-check command, wherever it sits. */
function healthUrl(test: string[] | undefined): URL {
  // A YAML plain scalar holding ': ' turns into a mapping; the command must stay strings.
  for (const part of test ?? []) expect(typeof part).toBe('string')
  const url = /https?:\/\/[^\s'"`]+/.exec((test ?? []).join(' '))?.[0]
  if (!url) throw new Error(`no URL in health check ${JSON.stringify(test)}`)
  return new URL(url)
}

function dotenv(text: string): Env {
  const entries = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=')
      return [line.slice(0, at), line.slice(at + 1)] as const
    })
  return Object.fromEntries(entries)
}

describe('infra/compose.yaml', () => {
  let text: string
  let services: Record<string, ComposeService>
  let tokend: [string, ComposeService][]
  let nginxConf: string

  beforeAll(async () => {
    text = await read('compose.yaml')
    services = parse(text).services
    tokend = Object.entries(services).filter(([, service]) => service.build?.args?.SERVICE === 'auth')
    nginxConf = await read('nginx/nginx.conf')
  })

  it('runs three tokend replicas, built from infra/Dockerfile, given only variables tokend reads', () => {
    expect(tokend.map(([name]) => name)).toEqual(['tokend-1', 'tokend-2', 'tokend-3'])
    for (const [, service] of tokend) {
      expect(service.build).toMatchObject({ context: '..', dockerfile: 'infra/Dockerfile' })
      const unknown = Object.keys(service.environment ?? {}).filter((name) => !tokendVariables.has(name))
      expect(unknown).toEqual([])
      expect(service.environment?.DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\/tokend$/)
    }
  })

  it('starts tokend on a healthy Postgres 17 with a volume, and calls it ready on /readyz at its PORT', () => {
    const postgres = services.postgres as ComposeService
    expect(postgres.image).toMatch(/^postgres:17(\b|$)/)
    expect(postgres.healthcheck?.test).toContain('pg_isready')
    expect(postgres.volumes).toContainEqual(expect.stringMatching(/^postgres-data:\/var\/lib\/postgresql\/data$/))
    expect(parse(text).volumes).toHaveProperty('postgres-data')

    for (const [, service] of tokend) {
      expect(service.depends_on?.postgres).toEqual({ condition: 'service_healthy' })
      const port = service.environment?.PORT
      expect(port).toBe(tokendDefaultPort)
      const url = healthUrl(service.healthcheck?.test)
      expect([url.port, url.pathname]).toEqual([port, '/readyz'])
    }
  })

  it('writes the bootstrap key to a volume, and gives tokend longer than its drain to stop', () => {
    for (const [, service] of tokend) {
      const file = service.environment?.TOKEND_BOOTSTRAP_TOKEN_FILE ?? ''
      expect(service.volumes).toContain(`tokend-bootstrap:${dirname(file)}`)
      expect(Number.parseInt(service.stop_grace_period ?? '10s', 10)).toBeGreaterThan(tokendDrainSeconds)
    }
  })

  it('puts nginx in front of exactly those replicas, on the port tokend listens on', () => {
    const nginx = services.nginx as ComposeService
    expect(nginx.volumes).toContain('./nginx/nginx.conf:/etc/nginx/nginx.conf:ro')
    const upstream = /upstream tokend \{([^}]*)\}/.exec(nginxConf)?.[1] ?? ''
    const servers = [...upstream.matchAll(/^\s*server\s+([\w.-]+):(\d+)\b/gm)].map((m) => `${m[1]}:${m[2]}`)
    expect(servers).toEqual(tokend.map(([name, service]) => `${name}:${service.environment?.PORT}`))
    expect(upstream).toMatch(/^\s*keepalive \d+;/m)
    for (const [name] of tokend) expect(nginx.depends_on?.[name]).toEqual({ condition: 'service_healthy' })

    const listen = /^\s*listen (\d+);/m.exec(nginxConf)?.[1]
    expect(nginx.ports).toEqual([`127.0.0.1:${listen}:${listen}`])
    const url = healthUrl(nginx.healthcheck?.test)
    expect([url.port, url.pathname]).toEqual([listen, '/readyz'])
    expect(services['voice-api']?.environment?.TOKEND_URL).toBe(`http://nginx:${listen}`)
  })

  it('builds voice-api from the same Dockerfile and gives it only its own variables', () => {
    const voiceApi = services['voice-api'] as ComposeService
    expect(voiceApi.build).toMatchObject({
      context: '..',
      dockerfile: 'infra/Dockerfile',
      args: { SERVICE: 'voice-api' },
    })
    const env = voiceApi.environment ?? {}
    expect(Object.keys(env).filter((name) => !voiceApiVariables.has(name))).toEqual([])
    expect(voiceApi.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      nginx: { condition: 'service_healthy' },
    })
    expect(env.TOKEND_SERVICE_KEY).toBeUndefined() // a secret file, never a value in compose.yaml
    expect(env.TOKEND_SERVICE_KEY_FILE).toBe(`/run/secrets/${voiceApi.secrets?.[0]}`)
    const url = healthUrl(voiceApi.healthcheck?.test)
    expect([url.port, url.pathname]).toEqual([env.PORT, '/healthz'])
  })

  it('checks the health of every service', () => {
    for (const [name, service] of Object.entries(services)) expect(service.healthcheck?.test, name).toBeDefined()
  })

  it('takes every interpolated variable from .env.example, and .env.example holds only known ones', async () => {
    const example = dotenv(await read('.env.example'))
    const interpolated = new Set([...text.matchAll(/\$\{(\w+)/g)].map((m) => m[1] as string))
    expect([...interpolated].filter((name) => !(name in example))).toEqual([])
    for (const name of Object.keys(example)) {
      const known = tokendVariables.has(name) || voiceApiVariables.has(name) || composeOnlyVariables.has(name)
      expect(known, `${name} is read by nothing`).toBe(true)
      expect(interpolated.has(name), `${name} is not used by compose.yaml`).toBe(true)
    }
    // Compose-only variables reach a service only through interpolation, never by name.
    for (const [name, service] of Object.entries(services)) {
      if (name === 'postgres') continue
      for (const variable of composeOnlyVariables) expect(service.environment ?? {}).not.toHaveProperty(variable)
    }
    expect(example.POSTGRES_PASSWORD).toBe('change-me')
  })
})

describe('infra/Dockerfile', () => {
  interface Stage {
    from: string
    name: string | undefined
    instructions: { op: string; args: string }[]
  }
  let stages: Stage[]
  let runtime: Stage
  const all = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args)

  beforeAll(async () => {
    const lines = (await read('Dockerfile'))
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'))
    stages = []
    for (const line of lines) {
      const [op = '', ...rest] = line.split(/\s+/)
      const args = rest.join(' ')
      if (op === 'FROM') {
        const [from = '', , name] = rest
        stages.push({ from, name, instructions: [] })
      } else {
        stages.at(-1)?.instructions.push({ op, args })
      }
    }
    runtime = stages.at(-1) as Stage
  })

  it('builds in stages: dependencies, then pnpm build, then a runtime stage from a clean base image', () => {
    expect(stages.map((stage) => stage.name)).toEqual(['base', 'deps', 'build', 'runtime'])
    const build = stages.find((stage) => stage.name === 'build') as Stage
    expect(all(build, 'RUN')).toContain('pnpm build')
    expect(runtime.from).toBe(stages[0]?.from)
  })

  it('runs as a non-root user', () => {
    const users = all(runtime, 'USER')
    expect(users).toHaveLength(1)
    const [user = '', group] = (users[0] as string).split(':')
    expect(['root', '0']).not.toContain(user)
    expect(group).not.toBe('0')
  })

  it('ships production dependencies only: the prod deploy and the bundle, no install step', () => {
    const build = stages.find((stage) => stage.name === 'build') as Stage
    const deploy = all(build, 'RUN').find((run) => run.includes(' deploy '))
    expect(deploy).toMatch(/--prod\b/)
    const out = deploy?.split(/\s+/).at(-1)
    expect(all(runtime, 'RUN').filter((run) => /\b(pnpm|npm|yarn|npx)\b/.test(run))).toEqual([])
    for (const copy of all(runtime, 'COPY')) {
      const [from, source] = copy.split(/\s+/)
      expect(from).toBe('--from=build')
      expect(source?.startsWith(`${out}/`)).toBe(true)
    }
  })

  it('runs node dist/main.js on the port tokend uses, with a health check on /healthz', () => {
    expect(all(runtime, 'CMD')).toEqual([
      '["node", "--enable-source-maps", "--max-semi-space-size=64", "dist/main.js"]',
    ])
    const env = all(runtime, 'ENV')
    expect(env).toContain(`PORT=${tokendDefaultPort}`)
    expect(all(runtime, 'EXPOSE')).toEqual([`${tokendDefaultPort} ${tokendGrpcPort}`])
    const healthcheck = all(runtime, 'HEALTHCHECK')[0] ?? ''
    expect(healthcheck).toContain("'http://127.0.0.1:' + process.env.PORT + '/healthz'")
  })

  it('keeps secrets and build output out of the build context', async () => {
    const ignored = (await readFile(join(repoRoot, '.dockerignore'), 'utf8')).split('\n')
    for (const entry of ['**/node_modules', '**/dist', '**/.data', '.git', '**/.env', 'infra/secrets']) {
      expect(ignored).toContain(entry)
    }
  })
})

describe('infra/k8s', () => {
  const k8s = join(infra, 'k8s')
  type Manifest = Record<string, any>
  let manifests: Manifest[]
  let files: string[]
  const ofKind = (kind: string) => {
    const found = manifests.filter((manifest) => manifest.kind === kind)
    expect(found, kind).toHaveLength(1)
    return found[0] as Manifest
  }

  beforeAll(async () => {
    files = (await readdir(k8s)).filter((file) => file.endsWith('.yaml')).sort()
    manifests = []
    for (const file of files) {
      for (const document of parseAllDocuments(await readFile(join(k8s, file), 'utf8'))) {
        expect(document.errors, file).toEqual([])
        manifests.push({ ...document.toJS(), file })
      }
    }
  })

  it('parses, and every manifest names its apiVersion and kind', () => {
    expect(files).toEqual([
      'deployment.yaml',
      'hpa.yaml',
      'kustomization.yaml',
      'pdb.yaml',
      'secret.example.yaml',
      'service.yaml',
    ])
    for (const manifest of manifests) {
      expect(manifest.apiVersion, manifest.file).toEqual(expect.any(String))
      expect(manifest.kind, manifest.file).toEqual(expect.any(String))
    }
    // The Secret is a template: the kustomization applies everything else.
    expect([...ofKind('Kustomization').resources].sort()).toEqual(
      files.filter((file) => file !== 'kustomization.yaml' && file !== 'secret.example.yaml'),
    )
  })

  describe('the Deployment', () => {
    let deployment: Manifest
    let container: Manifest
    let containerPort: number
    const portOf = (port: number | string) =>
      typeof port === 'number' ? port : container.ports.find((p: Manifest) => p.name === port)?.containerPort

    beforeAll(() => {
      deployment = ofKind('Deployment')
      container = deployment.spec.template.spec.containers[0]
      containerPort = container.ports[0].containerPort
    })

    it('runs three replicas listening on PORT, given only variables tokend reads', () => {
      expect(deployment.spec.replicas).toBe(3)
      expect(deployment.spec.template.spec.containers).toHaveLength(1)
      const env: Manifest[] = container.env
      expect(env.map((e) => e.name).filter((name) => !tokendVariables.has(name))).toEqual([])
      const port = env.find((e) => e.name === 'PORT')?.value
      expect(port).toBe(tokendDefaultPort)
      expect(String(containerPort)).toBe(port)
      const grpc = env.find((e) => e.name === 'TOKEND_GRPC_PORT')?.value
      expect(grpc).toBe(tokendGrpcPort)
      expect(String(portOf('grpc'))).toBe(grpc)
    })

    it('takes DATABASE_URL from the Secret, never from a value', () => {
      const secret = ofKind('Secret')
      const database = (container.env as Manifest[]).find((e) => e.name === 'DATABASE_URL')
      expect(database?.value).toBeUndefined()
      const ref = database?.valueFrom.secretKeyRef
      expect(ref?.name).toBe(secret.metadata.name)
      expect(secret.stringData).toHaveProperty(ref?.key)
      for (const value of Object.values<string>(secret.stringData)) expect(value).toContain('REPLACE_ME')
      expect(secret.data).toBeUndefined()
    })

    it('is ready on /readyz and alive on /healthz, both on the container port', () => {
      expect(container.readinessProbe.httpGet.path).toBe('/readyz')
      expect(container.livenessProbe.httpGet.path).toBe('/healthz')
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        expect(portOf(container[probe].httpGet.port), probe).toBe(containerPort)
      }
    })

    it('runs non-root on a read-only root filesystem, writing only to mounted volumes', () => {
      const pod = deployment.spec.template.spec
      expect(pod.securityContext.runAsNonRoot).toBe(true)
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0)
      expect(container.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      })
      const bootstrapFile = (container.env as Manifest[]).find((e) => e.name === 'TOKEND_BOOTSTRAP_TOKEN_FILE')?.value
      const mounts = (container.volumeMounts as Manifest[]).map((mount) => mount.mountPath)
      expect(mounts).toContain(dirname(bootstrapFile))
    })

    it('asks for resources and terminates gracefully', () => {
      expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) })
      expect(container.resources.limits.memory).toEqual(expect.any(String))
      const preStop = Number(container.lifecycle.preStop.exec.command.at(-1))
      const grace = deployment.spec.template.spec.terminationGracePeriodSeconds
      expect(grace).toBeGreaterThan(preStop + tokendDrainSeconds)
    })

    it('is reached through the Service, protected by the PDB and scaled by the HPA', () => {
      const labels = deployment.spec.template.metadata.labels
      expect(deployment.spec.selector.matchLabels).toEqual(labels)
      const service = ofKind('Service')
      expect(service.spec.selector).toEqual(labels)
      expect(service.spec.ports.map((port: Manifest) => portOf(port.targetPort))).toEqual([
        containerPort,
        portOf('grpc'),
      ])
      expect(ofKind('PodDisruptionBudget').spec.selector.matchLabels).toEqual(labels)
      const hpa = ofKind('HorizontalPodAutoscaler')
      expect(hpa.spec.scaleTargetRef).toEqual({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: deployment.metadata.name,
      })
      expect(hpa.spec.minReplicas).toBe(deployment.spec.replicas)
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas)
    })
  })
})

/**
 * Every value that compose.yaml and the k8s manifests hand a service goes through that
 * service's own configuration loader: a value it would refuse (such as `TOKEND_CACHE:
 * "true"` where voice-api takes on|off) fails here, not in a crash loop.
 */
describe('every environment value in infra/, through the services’ own settings', () => {
  let scratch: string
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tokend-infra-'))
  })
  afterAll(() => rm(scratch, { recursive: true, force: true }))

  /** Loads `env` with the service's own loader; resolves with its warnings, or throws its ConfigError. */
  async function load(service: 'auth' | 'voice-api', env: Env): Promise<string[]> {
    const warnings: string[] = []
    if (service === 'auth') {
      loadTokendConfig(env, (message) => warnings.push(message))
      return warnings
    }
    // The secret file is mounted by the orchestrator; here it is a real key in a real file.
    const keyFile = join(scratch, 'service.key')
    await writeFile(keyFile, `${generateKey(env.TOKEND_TOKEN_PREFIX ?? 'tk', 'live')}\n`)
    const given = env.TOKEND_SERVICE_KEY_FILE ? { ...env, TOKEND_SERVICE_KEY_FILE: keyFile } : env
    loadVoiceApiConfig(given, (message) => warnings.push(message))
    return warnings
  }

  it('compose.yaml, with .env.example filled in', async () => {
    const example = dotenv(await read('.env.example'))
    const interpolate = (value: string) =>
      value.replace(/\$\{(\w+)(?::?[-?][^}]*)?\}/g, (whole, name: string) => {
        const fallback = /:-([^}]*)\}$/.exec(whole)?.[1]
        const found = example[name] ?? fallback
        if (found === undefined) throw new Error(`${name} is neither in .env.example nor defaulted`)
        return found
      })
    const services: Record<string, ComposeService> = parse(await read('compose.yaml')).services
    const checked: string[] = []
    for (const [name, service] of Object.entries(services)) {
      const kind = service.build?.args?.SERVICE
      if (kind !== 'auth' && kind !== 'voice-api') continue
      const env = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(String(value))]),
      )
      await expect(load(kind, env), name).resolves.toEqual([])
      checked.push(name)
    }
    expect(checked).toEqual(['tokend-1', 'tokend-2', 'tokend-3', 'voice-api'])
  })

  it('the k8s Deployment, with the example Secret', async () => {
    const manifests = (await readdir(join(infra, 'k8s'))).filter((file) => file.endsWith('.yaml'))
    const documents: Record<string, any>[] = []
    for (const file of manifests) {
      for (const document of parseAllDocuments(await readFile(join(infra, 'k8s', file), 'utf8'))) {
        documents.push(document.toJS())
      }
    }
    const secrets = new Map(documents.filter((d) => d.kind === 'Secret').map((d) => [d.metadata.name, d.stringData]))
    const deployment = documents.find((d) => d.kind === 'Deployment')
    const env: Env = {}
    for (const entry of deployment?.spec.template.spec.containers[0].env ?? []) {
      const ref = entry.valueFrom?.secretKeyRef
      env[entry.name] = ref ? secrets.get(ref.name)?.[ref.key] : String(entry.value)
    }
    expect(Object.keys(env)).toContain('DATABASE_URL')
    await expect(load('auth', env)).resolves.toEqual([])
  })
})
