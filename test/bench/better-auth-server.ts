import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { apiKey } from '@better-auth/api-key'
import { betterAuth } from 'better-auth'
import { getMigrations } from 'better-auth/db/migration'
import pg from 'pg'

/**
 * P13's peer: better-auth's API-key plugin, as a TypeScript service would verify keys
 * with it, on the bench's Postgres (DATABASE_URL, a database of its own) with its
 * cache on: keys in a secondary storage (an in-process Map here, as fast as a cache
 * gets) that falls back to the database, the plugin's documented cached mode. Its
 * per-key rate limit (10 a day by default) is off, as tokend's hit load has none.
 *
 * `POST /verify {"token"}` answers `{ result: { data: <verifyApiKey's answer> } }`, the
 * shape the bench checks for tokend. At start it creates a user and one key, and writes
 * the key to BENCH_KEY_FILE.
 */
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const memory = new Map<string, { value: string; until: number }>()
const read = (key: string) => {
  const entry = memory.get(key)
  if (entry && entry.until < Date.now()) memory.delete(key)
  return entry && entry.until >= Date.now() ? entry.value : null
}
const write = (key: string, value: string, ttl?: number) => {
  memory.set(key, { value, until: ttl ? Date.now() + ttl * 1000 : Number.POSITIVE_INFINITY })
}
const auth = betterAuth({
  database: pool,
  secret: 'bench-secret-bench-secret-bench-secret',
  baseURL: 'http://127.0.0.1',
  telemetry: { enabled: false },
  logger: { disabled: true },
  secondaryStorage: {
    get: read,
    set: write,
    delete: (key) => void memory.delete(key),
    getAndDelete: (key) => {
      const value = read(key)
      memory.delete(key)
      return value
    },
    increment: (key, ttl) => {
      const next = Number(read(key) ?? 0) + 1
      if (next === 1) write(key, '1', ttl)
      else (memory.get(key) as { value: string }).value = String(next)
      return next
    },
  },
  plugins: [apiKey({ storage: 'secondary-storage', fallbackToDatabase: true, rateLimit: { enabled: false } })],
})

const { runMigrations } = await getMigrations(auth.options)
await runMigrations()
// The plugin's endpoints, typed here: its declarations do not reach auth.api's inferred type.
const api = auth.api as unknown as {
  createApiKey(request: { body: { userId: string; name: string } }): Promise<{ key: string }>
  verifyApiKey(request: { body: { key: string } }): Promise<{ valid: boolean }>
}
const context = await auth.$context
const user = await context.internalAdapter.createUser(
  { email: 'bench@example.com', name: 'bench' },
  { method: 'admin' },
)
const created = await api.createApiKey({ body: { userId: user.id, name: 'bench' } })
writeFileSync(process.env.BENCH_KEY_FILE ?? '/dev/null', created.key)

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
    return
  }
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => (body += chunk))
  req.on('end', () => {
    const { token } = JSON.parse(body) as { token: string }
    api.verifyApiKey({ body: { key: token } }).then(
      (data) => {
        const json = JSON.stringify({ result: { data } })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
        res.end(json)
      },
      (error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error))
      },
    )
  })
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT), '127.0.0.1')
