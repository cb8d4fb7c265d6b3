import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createContextInner } from '../context.ts'
import type { Deps } from '../deps.ts'
import { answerVerify, verifyInput } from '../tokens/token.router.ts'
import { REST_BASE } from './rest.ts'

type Handler = (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => void

const SINGLE = '/trpc/token.verify'
/** The same call over REST (http/rest.ts): the result without tRPC's envelope. */
const REST = `${REST_BASE}/tokens/verify`
const MAX_BATCH = 100
const BATCHES = new Map(
  Array.from({ length: MAX_BATCH }, (_, i) => [
    `/trpc/${Array(i + 1)
      .fill('token.verify')
      .join(',')}?batch=1`,
    i + 1,
  ]),
)
const MAX_BODY = 256 * 1024
const REQUEST_ID = /^[\w.:-]{1,128}$/

/**
 * The hot path: `POST /trpc/token.verify` — one call, or a batch of verify calls
 * only (`/trpc/token.verify,token.verify?batch=1`) — and `POST /api/v1/tokens/verify`,
 * when every call succeeds.
 *
 * The stock tRPC adapter turns every request into a WHATWG Request and stream, and
 * express and the request logger add more; for verify — the call every sibling makes
 * on every request — that costs more than the verification itself. This path reads
 * the small JSON body and does for a success what the procedure does: authenticates
 * the caller (authedProcedure), parses the input with the procedure's own schema and
 * calls its own resolver, `answerVerify`; then it writes tRPC's success envelope. It
 * skips tRPC's middleware plumbing, which allocates some 25 KB per call (young-
 * generation garbage whose collection pauses set the tail latency); the middlewares it
 * skips only shape errors, and errors go to tRPC. A test pins the procedure's
 * middlewares, so a new one cannot be skipped unnoticed.
 *
 * Anything else goes to the stock adapter untouched: other procedures, mixed batches,
 * streaming (`trpc-accept`), missing or large bodies, non-JSON, and every failure —
 * bad JSON, bad input, bad credentials, 503s — which is re-run by tRPC (or REST) with
 * the body already read (`req.body`), so its status, headers and bytes are their own.
 * Re-running a failed verify is harmless: a failure changes nothing. Batches that
 * apply rate limits are left to tRPC from the start, so no request is counted twice.
 */
export function withFastVerify(deps: Deps, fallback: Handler): Handler {
  return (req, res) => {
    const length = Number(req.headers['content-length'])
    const calls = req.url === SINGLE || req.url === REST ? 0 : BATCHES.get(req.url ?? '')
    if (
      req.method !== 'POST' ||
      calls === undefined ||
      !(length > 0 && length <= MAX_BODY) ||
      req.headers['trpc-accept'] !== undefined ||
      !isJson(req.headers['content-type'])
    ) {
      fallback(req, res)
      return
    }
    readBody(req, length).then(
      (body) => void verify(deps, req, res, body, calls, fallback),
      () => res.destroy(),
    )
  }
}

async function verify(
  deps: Deps,
  req: IncomingMessage & { body?: unknown },
  res: ServerResponse,
  body: string,
  /** 0 for a single call, else the number of calls in the batch. */
  calls: number,
  fallback: Handler,
): Promise<void> {
  const given = req.headers['x-request-id']
  const requestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
  let json: string
  try {
    const ctx = createContextInner(
      deps,
      {
        requestId,
        address: req.socket.remoteAddress ?? null,
        userAgent: req.headers['user-agent']?.slice(0, 512) ?? null,
      },
      req.headers.authorization,
    )
    const principal = await ctx.authenticate()
    if (!principal) throw new Error('left to tRPC')
    const input = JSON.parse(body)
    const answer = (raw: unknown) => answerVerify(deps, principal, verifyInput.parse(raw))
    if (req.url === REST) {
      json = JSON.stringify(await answer(input))
    } else if (calls === 0) {
      json = `{"result":{"data":${JSON.stringify(await answer(input))}}}`
    } else {
      const inputs = Array.from({ length: calls }, (_, i) => input?.[i])
      if (inputs.some((item) => item?.ratelimit !== undefined)) throw new Error('left to tRPC')
      const results = await Promise.all(inputs.map(answer))
      json = `[${results.map((data) => `{"result":{"data":${JSON.stringify(data)}}}`).join(',')}]`
    }
  } catch {
    req.body = body
    fallback(req, res)
    return
  }
  res.writeHead(200, {
    'x-request-id': requestId,
    'content-type': 'application/json',
    ...(req.url === REST ? { 'cache-control': 'no-store' } : { vary: 'trpc-accept, accept' }),
    'content-length': Buffer.byteLength(json),
  })
  res.end(json)
  // Successful verifies are the bulk of all traffic: logged only at debug (metrics count them all).
  if (deps.logger.isLevelEnabled('debug')) {
    deps.logger.debug(
      { req: { id: requestId, method: 'POST', path: req.url }, res: { statusCode: 200 } },
      'request completed',
    )
  }
}

function isJson(contentType: string | undefined): boolean {
  return contentType === 'application/json' || contentType?.startsWith('application/json;') === true
}

function readBody(req: IncomingMessage, length: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > length) reject(new Error('body longer than its content-length'))
      else chunks.push(chunk)
    })
    req.on('end', () =>
      resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString() : Buffer.concat(chunks).toString()),
    )
    req.on('error', reject)
  })
}
