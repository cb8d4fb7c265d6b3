import { Writable } from 'node:stream'
import { Caller, freshDatabase } from '@tokend/testing'

export { Caller, type Reply } from '@tokend/testing'

import { pino } from 'pino'
import { type App, type AppOptions, createApp } from '../src/app.ts'
import { loadConfig } from '../src/config.ts'

export interface TestApp {
  app: App
  url: string
  databaseUrl: string
  /** The operator account's bootstrap admin key. */
  bootstrapKey: string
  /** A caller authenticated with the bootstrap key. */
  operator: Caller
  /** Every log line the app wrote, as text. */
  logs: string[]
  stop(): Promise<void>
}

/**
 * Starts tokend on a fresh database of the test cluster, listening on a free port,
 * logging into memory. Call `stop()` in the file's afterAll: it also drops the database.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  database?: { url: string },
  options: Pick<AppOptions, 'clock'> = {},
): Promise<TestApp> {
  const owned = database ? undefined : await freshDatabase()
  const databaseUrl = database?.url ?? (owned as { url: string }).url
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk))
      done()
    },
  })
  const config = loadConfig(
    {
      // Tests about other things issue many keys; the limits' own tests set these back.
      TOKEND_MAX_ACTIVE_KEYS: '100000',
      TOKEND_KEY_CREATIONS_PER_MINUTE: '100000',
      DATABASE_URL: databaseUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      // gRPC's default port is fixed: tests that use gRPC pass a free one.
      TOKEND_GRPC_PORT: '0',
      LOG_LEVEL: 'debug',
      ...env,
    },
    () => {},
  )
  const logger = pino(
    { level: 'debug', redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'] },
    sink,
  )
  let bootstrapKey = ''
  const app = createApp({ ...options, config, logger, announceBootstrapKey: (key) => (bootstrapKey = key) })
  const { url } = await app.start().catch(async (error: unknown) => {
    await app.stop().catch(() => {})
    await owned?.drop()
    throw error
  })
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await app.stop()
    await owned?.drop()
  }
  return { app, url, databaseUrl, bootstrapKey, operator: new Caller(url, bootstrapKey), logs, stop }
}

/** Issues a key through the API and returns the issue response's data. */
export async function issue(caller: Caller, input: Record<string, unknown> = {}) {
  const reply = await caller.mutation('token.issue', { name: 'test key', environment: 'test', ...input })
  if (reply.status !== 200) throw new Error(`issue failed: ${JSON.stringify(reply.body)}`)
  return reply.body.result.data as { token: string; id: string; accountId: string; [field: string]: unknown }
}

/** Creates an account and an admin key for it; returns a caller holding that key. */
export async function newAccount(operator: Caller, name = 'customer') {
  const created = await operator.mutation('account.create', { name, plan: 'paid' })
  const accountId = created.body.result.data.id as string
  const admin = await issue(operator, { name: `${name} admin`, role: 'admin', accountId, environment: 'live' })
  return { accountId, admin: operator.as(admin.token), adminKey: admin }
}

/** A password that meets the policy, for every test user. */
export const PASSWORD = 'correct horse battery staple'
let users = 0

/** A fresh username, unique across the run. */
export function uniqueName(stem = 'user'): string {
  return `${stem}${Date.now().toString(36)}${(users++).toString(36)}`
}

/** Creates a user through `admin` (into `accountId` when given). */
export async function createUser(admin: Caller, input: { role?: 'admin' | 'manager'; accountId?: string } = {}) {
  const username = uniqueName()
  const reply = await admin.mutation('user.create', {
    username,
    email: `${username}@example.com`,
    password: PASSWORD,
    ...input,
  })
  if (reply.status !== 200) throw new Error(`user.create failed: ${JSON.stringify(reply.body)}`)
  return reply.body.result.data as { id: string; accountId: string; username: string; role: string }
}

/** Signs `username` in; returns the login answer's data. */
export async function login(caller: Caller, username: string, password = PASSWORD) {
  const reply = await caller.as(undefined).mutation('auth.login', { username, password })
  if (reply.status !== 200) throw new Error(`login failed: ${JSON.stringify(reply.body)}`)
  return reply.body.result.data as { username: string; token: string; expiresAt: string }
}

/** Creates a user and signs it in; `session` calls with the session token. */
export async function newSession(admin: Caller, input: { role?: 'admin' | 'manager'; accountId?: string } = {}) {
  const user = await createUser(admin, input)
  const { token } = await login(admin, user.username)
  return { user, token, session: admin.as(token) }
}
