import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TRPCError } from '@trpc/server'
import { getHTTPStatusCode } from '@trpc/server/http'
import getRawBody from 'raw-body'
import { createContext } from '../context.ts'
import type { Deps } from '../deps.ts'
import { UnauthenticatedError } from '../errors.ts'
import { answerVerify, type VerifyInput, type VerifyResult, verifyInput } from '../tokens/verify.ts'
import { errorHeaders, errorShape, toTRPCError } from '../trpc.ts'
import { nulPath } from '../validation.ts'
import { answerUnexpected, reportError } from './report.ts'
import { type RequestInfo, requestId, type Trust } from './request-meta.ts'
import { API_HEADERS, REST_BASE, restProblem, sendJson } from './rest.ts'

export type Handler = (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => void

const TRPC_PATH = '/trpc/token.verify'
/** The same call over REST (http/rest.ts): the result without tRPC's envelope. */
const REST_PATH = `${REST_BASE}/tokens/verify`
const BATCH = '?batch=1'
const MAX_BATCH = 100
const MAX_BODY = 256 * 1024
/** What tRPC's adapter sends with every answer, and the API's own headers. */
export const TRPC_HEADERS = { ...API_HEADERS, vary: 'trpc-accept, accept' }

type Route = { transport: 'rest' } | { transport: 'trpc'; batch: number | null }

/**
 * The hot path: `POST /trpc/token.verify`, a batch of verify calls alone
 * (`/trpc/token.verify,token.verify?batch=1`) and `POST /api/v1/tokens/verify`.
 *
 * The stock tRPC adapter turns every request into a WHATWG Request and stream, and
 * express and the request logger add more; for verify — the call every sibling makes
 * on every request — that costs more than the verification itself. This path is only
 * another transport for the same procedure: it parses the whole request first (the
 * JSON body and every call's input, with the procedure's own schema and the NUL check
 * every procedure has); if any of that fails, nothing has been done yet and the request
 * goes to the stock adapter, which answers the error in its own words. Otherwise it
 * authenticates the caller as tRPC does (`createContext`), calls the procedure's own
 * resolver (`answerVerify`) once per call, and writes the answer — or the errors,
 * formatted by tRPC's own error shape and status functions — itself. A request is never
 * run twice. A test pins the procedure's middlewares, so a new one cannot be skipped
 * unnoticed, and property tests compare the bytes of both paths.
 */
export function withFastVerify(deps: Deps, trust: Trust, fallback: Handler): Handler {
  return (req, res) => {
    const route = routeOf(req)
    if (route === null) {
      fallback(req, res)
      return
    }
    getRawBody(req, { length: req.headers['content-length'], limit: MAX_BODY, encoding: 'utf8' })
      .then(
        (body) => {
          const inputs = parseCalls(body, route)
          if (inputs === null) {
            req.body = body
            fallback(req, res)
            return
          }
          return answer(deps, { id: requestId(req, res), trust }, req, res, route, inputs)
        },
        // The client went away or sent less than it announced: nobody is left to answer.
        () => res.destroy(),
      )
      .catch((error: unknown) => answerUnexpected(deps, error, req, res))
  }
}

function routeOf(req: IncomingMessage): Route | null {
  const length = Number(req.headers['content-length'])
  if (
    req.method !== 'POST' ||
    !(length > 0 && length <= MAX_BODY) ||
    req.headers['trpc-accept'] !== undefined ||
    !isJson(req.headers['content-type'])
  ) {
    return null
  }
  const url = req.url ?? ''
  if (url === TRPC_PATH) return { transport: 'trpc', batch: null }
  if (url === REST_PATH) return { transport: 'rest' }
  if (!url.startsWith('/trpc/') || !url.endsWith(BATCH)) return null
  const paths = url.slice('/trpc/'.length, -BATCH.length).split(',')
  if (paths.length > MAX_BATCH || paths.some((path) => path !== 'token.verify')) return null
  return { transport: 'trpc', batch: paths.length }
}

/** Every call's input, parsed; null when any one is not a valid input (tRPC then says why). */
function parseCalls(body: string, route: Route): VerifyInput[] | null {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return null
  }
  let raws: unknown[]
  if (route.transport === 'rest' || route.batch === null) raws = [json]
  else if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const calls = json as Record<string, unknown>
    raws = Array.from({ length: route.batch }, (_, index) => calls[index])
  } else return null
  // JSON can only carry NUL escaped, so a body without the escape needs no walk.
  const mayHoldNul = body.includes('\\u0000')
  const inputs: VerifyInput[] = []
  for (const raw of raws) {
    if (mayHoldNul && nulPath(raw) !== null) return null
    const parsed = verifyInput.safeParse(raw)
    if (!parsed.success) return null
    inputs.push(parsed.data)
  }
  return inputs
}

async function answer(
  deps: Deps,
  info: RequestInfo,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  inputs: VerifyInput[],
): Promise<void> {
  const ctx = createContext(deps, req, info)
  const outcomes = await Promise.allSettled(
    inputs.map(async (input) => {
      const caller = await ctx.authenticate()
      if (!caller) throw new UnauthenticatedError()
      return answerVerify(deps, caller, input)
    }),
  )
  const errors = outcomes.map((outcome) => (outcome.status === 'rejected' ? toTRPCError(outcome.reason) : undefined))
  for (const error of errors) if (error) reportError(deps, error, { path: 'token.verify', requestId: info.id })
  if (route.transport === 'rest') {
    const [outcome] = outcomes
    const [error] = errors
    if (error) restProblem(res, error, { instance: REST_PATH, requestId: info.id })
    else sendJson(res, 200, (outcome as PromiseFulfilledResult<VerifyResult>).value)
  } else {
    const envelopes = outcomes.map((outcome, index) =>
      outcome.status === 'fulfilled'
        ? { result: { data: outcome.value } }
        : { error: errorShape(errors[index] as TRPCError, 'token.verify', 'mutation', inputs[index]) },
    )
    const defined = errors.filter((error) => error !== undefined)
    const status = defined.length === 0 ? 200 : getHTTPStatusCode(envelopes, errors)
    const headers = { ...TRPC_HEADERS, ...errorHeaders(defined) }
    sendJson(res, status, route.batch === null ? envelopes[0] : envelopes, headers)
  }
  // Successful verifies are the bulk of all traffic: logged at debug, as on every transport.
  if (deps.logger.isLevelEnabled('debug')) {
    deps.logger.debug(
      { req: { id: info.id, method: 'POST', path: req.url }, res: { statusCode: res.statusCode } },
      'request completed',
    )
  }
}

function isJson(contentType: string | undefined): boolean {
  return contentType === 'application/json' || contentType?.startsWith('application/json;') === true
}
