import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TRPCError } from '@trpc/server'
import { getHTTPStatusCode } from '@trpc/server/http'
import { callerOf } from '../context.ts'
import type { Deps } from '../deps.ts'
import { UnauthenticatedError } from '../errors.ts'
import { isPromise, type MaybePromise } from '../maybe-promise.ts'
import type { Principal } from '../principal.ts'
import { answerVerify, type VerifyInput, type VerifyResult } from '../tokens/verify.ts'
import { parseVerifyInput } from '../tokens/verify-input.ts'
import { errorHeaders, errorShape, toTRPCError } from '../trpc.ts'
import { nulPath } from '../validation.ts'
import { answerUnexpected, reportError } from './report.ts'
import { type RequestInfo, requestIdOf, requestMeta, type Trust } from './request-meta.ts'
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
    readBody(req, (body) => {
      if (body === null) {
        // The client went away or sent less than it announced: nobody is left to answer.
        res.destroy()
        return
      }
      const id = requestIdOf(req)
      try {
        const inputs = parseCalls(body, route)
        if (inputs === null) {
          req.body = body
          fallback(req, res)
          return
        }
        const answered = answer(deps, { id, trust }, req, res, route, inputs)
        if (isPromise(answered)) answered.catch((error: unknown) => unexpected(deps, error, id, req, res))
      } catch (error) {
        unexpected(deps, error, id, req, res)
      }
    })
  }
}

/**
 * The whole body as text, or null when the request ended early. Node's parser frames
 * the body by its content-length (which routeOf bounds), so no more than that arrives.
 */
function readBody(req: IncomingMessage, done: (body: string | null) => void): void {
  // Bytes, decoded once at the end: no StringDecoder per request.
  let chunks: Buffer[] | null = []
  req.on('data', (chunk: Buffer) => chunks?.push(chunk))
  req.on('end', () => {
    if (chunks !== null) done((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString())
  })
  // Once: an abort after the body was read is the socket's business, not this request's.
  req.on('error', () => {
    if (chunks !== null && !req.complete) done(null)
    chunks = null
  })
}

function unexpected(deps: Deps, error: unknown, id: string, req: IncomingMessage, res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('x-request-id', id)
  answerUnexpected(deps, error, req, res)
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
  if (url === TRPC_PATH) return SINGLE
  if (url === REST_PATH) return REST
  if (!url.startsWith('/trpc/') || !url.endsWith(BATCH)) return null
  const paths = url.slice('/trpc/'.length, -BATCH.length).split(',')
  if (paths.length > MAX_BATCH || paths.some((path) => path !== 'token.verify')) return null
  return { transport: 'trpc', batch: paths.length }
}

const SINGLE: Route = { transport: 'trpc', batch: null }
const REST: Route = { transport: 'rest' }

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
    const parsed = parseVerifyInput(raw)
    if (parsed === null) return null
    inputs.push(parsed)
  }
  return inputs
}

type Outcome = { ok: true; value: VerifyResult } | { ok: false; error: unknown }

/**
 * Authenticates the caller once, verifies every input, and answers. When every step is
 * answered from memory (a cache hit for the caller and for each key) this all happens
 * now, with no promise; otherwise the answer is written once the last step settles.
 */
function answer(
  deps: Deps,
  info: RequestInfo,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  inputs: VerifyInput[],
): MaybePromise<void> {
  let caller: MaybePromise<Principal | null>
  try {
    // The caller's address is worked out only if its key is bound to networks.
    caller = callerOf(deps, req.headers.authorization, requestMeta(req, info))
  } catch (error) {
    caller = Promise.reject(error)
  }
  const verify = (principal: Principal | null, input: VerifyInput) => {
    if (!principal) throw new UnauthenticatedError()
    return answerVerify(deps, principal, input)
  }
  const outcomes = inputs.map((input) =>
    settle(() => (isPromise(caller) ? caller.then((principal) => verify(principal, input)) : verify(caller, input))),
  )
  if (outcomes.some(isPromise)) {
    return Promise.all(outcomes).then((settled) => respond(deps, info.id, req, res, route, inputs, settled))
  }
  respond(deps, info.id, req, res, route, inputs, outcomes as Outcome[])
}

function settle(run: () => MaybePromise<VerifyResult>): MaybePromise<Outcome> {
  try {
    const value = run()
    if (!isPromise(value)) return { ok: true, value }
    return value.then(
      (value): Outcome => ({ ok: true, value }),
      (error: unknown): Outcome => ({ ok: false, error }),
    )
  } catch (error) {
    return { ok: false, error }
  }
}

/** What tRPC's adapter sends with a success, with the content type: written in one writeHead. */
const OK_HEADERS = [...Object.entries(TRPC_HEADERS).flat(), 'content-type', 'application/json']
const REST_OK_HEADERS = [...Object.entries(API_HEADERS).flat(), 'content-type', 'application/json']

function respond(
  deps: Deps,
  id: string,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  inputs: VerifyInput[],
  outcomes: Outcome[],
): void {
  const errors = outcomes.map((outcome) => (outcome.ok ? undefined : toTRPCError(outcome.error)))
  const defined = errors.filter((error) => error !== undefined)
  for (const error of defined) reportError(deps, error, { path: 'token.verify', requestId: id })
  if (defined.length === 0) {
    // The common answer, written without the envelope objects: `{"result":{"data":…}}`.
    const values = outcomes.map((outcome) => JSON.stringify((outcome as { value: VerifyResult }).value))
    const json =
      route.transport === 'rest'
        ? (values[0] as string)
        : route.batch === null
          ? `{"result":{"data":${values[0]}}}`
          : `[${values.map((value) => `{"result":{"data":${value}}}`).join(',')}]`
    const headers = route.transport === 'rest' ? REST_OK_HEADERS : OK_HEADERS
    res.writeHead(200, [...headers, 'x-request-id', id, 'content-length', String(Buffer.byteLength(json))])
    res.end(json)
  } else {
    res.setHeader('x-request-id', id)
    if (route.transport === 'rest') restProblem(res, defined[0] as TRPCError, { instance: REST_PATH, requestId: id })
    else {
      const envelopes = outcomes.map((outcome, index) =>
        outcome.ok
          ? { result: { data: outcome.value } }
          : { error: errorShape(errors[index] as TRPCError, 'token.verify', 'mutation', inputs[index]) },
      )
      const status = getHTTPStatusCode(envelopes, errors)
      const headers = { ...TRPC_HEADERS, ...errorHeaders(defined) }
      sendJson(res, status, route.batch === null ? envelopes[0] : envelopes, headers)
    }
  }
  // Successful verifies are the bulk of all traffic: logged at debug, as on every transport.
  if (deps.logger.isLevelEnabled('debug')) {
    deps.logger.debug(
      { req: { id, method: 'POST', path: req.url }, res: { statusCode: res.statusCode } },
      'request completed',
    )
  }
}

function isJson(contentType: string | undefined): boolean {
  return contentType === 'application/json' || contentType?.startsWith('application/json;') === true
}
