import { createHash } from 'node:crypto'
import { createServer } from 'node:http'

/**
 * The honest baseline: bare `node:http` doing what a verify must at least do — read a
 * JSON body, hash the presented key once (SHA-256), look the digest up in a Map, answer
 * JSON (tRPC's envelope, with tokend's answer for the hit key). No framework, no checks.
 */
const digest = (token: string) => createHash('sha256').update(token).digest('base64url')
const entries = new Map<string, unknown>(
  (JSON.parse(process.env.BARE_ENTRIES ?? '[]') as [string, unknown][]).map(([token, answer]) => [
    digest(token),
    answer,
  ]),
)
const server = createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
    return
  }
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => (body += chunk))
  req.on('end', () => {
    const { token } = JSON.parse(body) as { token: string }
    const json = JSON.stringify({ result: { data: entries.get(digest(token)) ?? { valid: false } } })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) })
    res.end(json)
  })
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT), '127.0.0.1')
