import type { ServerResponse } from 'node:http'
import { type AnyProcedure, TRPCError } from '@trpc/server'
import { getHTTPStatusCodeFromError } from '@trpc/server/http'
import express from 'express'
import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi'
import { createContext } from '../context.ts'
import type { Deps } from '../deps.ts'
import { ERROR_REASONS } from '../errors.ts'
import { appRouter } from '../router.ts'
import { createCallerFactory, describeError, errorHeaders, type Meta, toTRPCError } from '../trpc.ts'
import { reportError } from './report.ts'
import type { Trust } from './request-meta.ts'

/**
 * REST over the same procedures as /trpc (SPEC §4, issue 8): each procedure with
 * `meta.openapi` answers at `/api/v1{path}`, and `/openapi.json` describes them all.
 * Both come from the routers — their input schemas, output schemas and metadata — so
 * nothing about an endpoint is written twice.
 *
 * trpc-to-openapi generates the document. Its request handler is not used: it sets
 * `coerce` on the routers' own zod schemas at run time, which would change what /trpc
 * accepts too (`"false"` would pass as `true` for a boolean). This adapter coerces
 * query strings into a copy of the input instead, and answers errors as RFC 9457
 * problem details (`application/problem+json`, see `problemOf`) with tRPC's status
 * codes and headers (RFC 6750's `WWW-Authenticate`, `Retry-After`).
 */
export const REST_BASE = '/api/v1'

/** On every API answer: answers are the caller's own, and are JSON whatever a browser guesses. */
export const API_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const

/** RFC 9457 problem types: this base and the stable reason, e.g. `…/problems/not_found`. */
export const PROBLEM_TYPE_BASE = 'https://tokend.dev/problems/'
const PROBLEM_JSON = 'application/problem+json'

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH'])
const MAX_BODY = '1mb'

interface Route {
  method: string
  /** As the document writes it, e.g. `/tokens/{id}`. */
  template: string
  pattern: RegExp
  /** The procedure's dotted path, e.g. `token.verify`. */
  path: string
  procedure: AnyProcedure
}

const createCaller = createCallerFactory(appRouter)
const procedures = appRouter._def.procedures as unknown as Record<string, AnyProcedure>
const routes: Route[] = Object.entries(procedures).flatMap(([path, procedure]) => {
  const openapi = (procedure._def.meta as Meta | undefined)?.openapi
  if (!openapi || openapi.enabled === false || procedure._def.type === 'subscription') return []
  const pattern = new RegExp(`^${openapi.path.replace(/\{(\w+)\}/g, '(?<$1>[^/]+)')}/?$`)
  return [{ method: openapi.method, template: openapi.path, pattern, path, procedure }]
})

/** The REST endpoints, to mount at `REST_BASE`. */
export function restApi(deps: Deps, trust: Trust): express.Router {
  const api = express.Router()
  api.use(express.json({ limit: MAX_BODY }))
  api.use(async (req, res) => {
    let route: Route | undefined
    try {
      const method = req.method === 'HEAD' ? 'GET' : req.method
      const matching = routes.filter((candidate) => candidate.pattern.test(req.path))
      route = matching.find((candidate) => candidate.method === method)
      if (!route) {
        if (matching.length === 0) throw new TRPCError({ code: 'NOT_FOUND', message: 'no such route' })
        res.setHeader('allow', [...new Set(matching.map((candidate) => candidate.method))].join(', '))
        throw new TRPCError({ code: 'METHOD_NOT_SUPPORTED', message: `${req.method} is not allowed here` })
      }
      if (hasBody(req) && !req.is('application/json')) {
        throw new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send JSON (content-type: application/json)' })
      }
      const input = inputOf(route, req)
      const ctx = createContext(deps, req, { id: String(req.id), trust })
      const call = route.path
        .split('.')
        .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], createCaller(ctx)) as (
        input: unknown,
      ) => Promise<unknown>
      sendJson(res, 200, await call(input))
    } catch (cause) {
      const error = toTRPCError(cause)
      reportError(deps, error, { path: route?.path, requestId: String(req.id), log: req.log })
      restProblem(res, error, { instance: instanceOf(req.originalUrl), requestId: String(req.id) })
    }
  })
  // Body parser failures: malformed JSON, too large, a charset it cannot read.
  api.use((error: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = (error as { status?: number }).status
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'PARSE_ERROR'
    const message = code === 'PARSE_ERROR' ? 'the body is not valid JSON' : 'the body cannot be read'
    const problem = new TRPCError({ code, message, cause: error })
    restProblem(res, problem, { instance: instanceOf(req.originalUrl), requestId: String(req.id) })
  })
  return api
}

/** A JSON answer with the API's headers, on every REST and fast-path answer. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: object = API_HEADERS,
  contentType = 'application/json',
): void {
  const json = JSON.stringify(body)
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(json) })
  res.end(json)
}

/**
 * An error answer outside the REST API (edge endpoints, introspection, the console's
 * cookie check): tRPC's status and headers, `{ "error": { "code": <reason>, … } }`.
 */
export function restError(res: ServerResponse, error: TRPCError): void {
  const { reason, message, issues, retryAfterMs } = describeError(error)
  const headers = { ...API_HEADERS, ...errorHeaders([error]) }
  sendJson(res, getHTTPStatusCodeFromError(error), { error: { code: reason, message, issues, retryAfterMs } }, headers)
}

/** An RFC 9457 problem: the standard members, then tokend's stable `reason` and its details. */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  instance?: string
  reason: string
  issues?: Array<{ path: string; message: string }>
  missingScopes?: string[]
  retryAfterMs?: number
  requestId?: string
}

/**
 * The problem an error is: `type` names its reason (`https://tokend.dev/problems/<reason>`),
 * `title` is fixed per reason, `detail` is the message for people. `instance` is the
 * request's path (never its query string, which may hold input).
 */
export function problemOf(error: TRPCError, where: { instance?: string; requestId?: string } = {}): Problem {
  const { reason, message, issues, retryAfterMs, missingScopes } = describeError(error)
  const known = ERROR_REASONS[reason as keyof typeof ERROR_REASONS]
  return {
    type: `${PROBLEM_TYPE_BASE}${reason}`,
    title: known?.title ?? ERROR_REASONS.internal.title,
    status: getHTTPStatusCodeFromError(error),
    detail: message,
    ...(where.instance !== undefined && { instance: where.instance }),
    reason,
    ...(issues && { issues }),
    ...(missingScopes && missingScopes.length > 0 && { missingScopes: [...missingScopes] }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
    ...(where.requestId !== undefined && { requestId: where.requestId }),
  }
}

/** A REST API error answer: tRPC's status and headers, an `application/problem+json` body. */
export function restProblem(
  res: ServerResponse,
  error: TRPCError,
  where: { instance?: string; requestId?: string } = {},
): void {
  const problem = problemOf(error, where)
  sendJson(res, problem.status, problem, { ...API_HEADERS, ...errorHeaders([error]) }, PROBLEM_JSON)
}

/** A request URL's path, as a problem's `instance`. */
export function instanceOf(url: string | undefined): string {
  return (url ?? '').split('?')[0] ?? ''
}

/**
 * The procedure's input: path parameters over the JSON body, or over the query string
 * for GET and DELETE. Query values are strings; numbers and booleans are converted
 * where the input schema asks for them, and nothing else is (the schema judges).
 */
function inputOf(route: Route, req: express.Request): unknown {
  const params = pathParams(route, req.path)
  if (BODY_METHODS.has(route.method)) {
    const body = bodyOf(req)
    if (body === undefined) return Object.keys(params).length > 0 ? params : undefined
    return isPlainObject(body) ? { ...body, ...params } : body
  }
  const query = new URL(req.originalUrl, 'http://localhost').searchParams
  if (query.size === 0) return Object.keys(params).length > 0 ? params : undefined
  const shape = objectShape(route.procedure._def.inputs[0])
  const input: Record<string, unknown> = {}
  for (const key of new Set(query.keys())) {
    const values = query.getAll(key)
    const kind = kindOf(shape?.[key])
    if (kind === 'array') input[key] = values
    else if (values.length > 1) input[key] = values
    else input[key] = coerce(values[0] as string, kind)
  }
  return { ...input, ...params }
}

/** The parsed body; the verify fast path (fast-verify.ts) hands over the text it has read. */
function bodyOf(req: express.Request): unknown {
  if (typeof req.body !== 'string') return req.body
  try {
    return JSON.parse(req.body)
  } catch (error) {
    throw new TRPCError({ code: 'PARSE_ERROR', message: 'the body is not valid JSON', cause: error })
  }
}

function pathParams(route: Route, path: string): Record<string, string> {
  const groups = route.pattern.exec(path)?.groups ?? {}
  try {
    return Object.fromEntries(Object.entries(groups).map(([key, value]) => [key, decodeURIComponent(value)]))
  } catch (error) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: 'the path is not valid URL encoding', cause: error })
  }
}

function coerce(value: string, kind: string | undefined): unknown {
  if (kind === 'number' && /^-?\d+(\.\d+)?$/.test(value)) return Number(value)
  if (kind === 'boolean' && (value === 'true' || value === 'false')) return value === 'true'
  return value
}

interface SchemaDef {
  type: string
  innerType?: { _zod: { def: SchemaDef } }
  in?: { _zod: { def: SchemaDef } }
  out?: { _zod: { def: SchemaDef } }
  shape?: Record<string, unknown>
}

/** Looks through the wrappers (default, optional, nullable, preprocess) to the type beneath. */
function unwrap(schema: unknown): SchemaDef | undefined {
  let def = (schema as { _zod?: { def: SchemaDef } } | undefined)?._zod?.def
  while (def) {
    const inner = def.innerType ?? (def.type === 'pipe' ? def.out : undefined)
    if (!inner) return def
    def = inner._zod.def
  }
  return undefined
}

function objectShape(schema: unknown): Record<string, unknown> | undefined {
  const def = unwrap(schema)
  return def?.type === 'object' ? def.shape : undefined
}

function kindOf(schema: unknown): string | undefined {
  return unwrap(schema)?.type
}

/** A body with content (an empty POST, as fetch sends it, has none). */
function hasBody(req: express.Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

let document: OpenAPIObject | undefined

/** The OpenAPI 3.1 description of the REST API, generated once from the routers. */
export function openApiDocument(): OpenAPIObject {
  document ??= describe()
  return document
}

type Components = NonNullable<OpenAPIObject['components']>
type ResponseObject = Extract<NonNullable<Components['responses']>[string], { description: string }>

const ERROR_RESPONSES: Record<
  number,
  { name: string; description: string; example: keyof typeof ERROR_REASONS; headers?: ResponseObject['headers'] }
> = {
  400: {
    name: 'BadRequest',
    description: 'Malformed JSON or invalid input; `issues` names the fields',
    example: 'invalid_input',
  },
  401: {
    name: 'Unauthorized',
    description: 'No valid bearer credential',
    example: 'invalid_token',
    headers: { 'WWW-Authenticate': { schema: { type: 'string', examples: ['Bearer realm="tokend"'] } } },
  },
  403: {
    name: 'Forbidden',
    description: 'The credential may not do this (role, scope, or another account)',
    example: 'forbidden',
  },
  404: { name: 'NotFound', description: 'No such object', example: 'not_found' },
  409: {
    name: 'Conflict',
    description: 'The change conflicts with the current state or a limit',
    example: 'token_limit_reached',
  },
  429: {
    name: 'TooManyRequests',
    description: 'Rate limited; retry after `Retry-After` seconds',
    example: 'rate_limited',
    headers: { 'Retry-After': { schema: { type: 'integer', minimum: 0 } } },
  },
  503: {
    name: 'Unavailable',
    description: 'The database is unavailable; nothing was written, try again',
    example: 'unavailable',
  },
}

function describe(): OpenAPIObject {
  // Hot-path procedures document their output without validating it on every call.
  // trpc-to-openapi reads the output schema from the procedure, so it sees a copy with it.
  const documented = Object.fromEntries(
    Object.entries(procedures).map(([path, procedure]) => {
      const meta = procedure._def.meta as Meta | undefined
      if (!meta?.openapi) return [path, procedure]
      const { errorResponses: _, ...openapi } = meta.openapi
      const output = meta.documentedOutput ?? (procedure._def as { output?: unknown }).output
      return [path, { ...procedure, _def: { ...procedure._def, meta: { ...meta, openapi }, output } }]
    }),
  )
  const doc = generateOpenApiDocument(
    { ...appRouter, _def: { ...appRouter._def, procedures: documented } } as unknown as typeof appRouter,
    {
      title: 'tokend',
      description:
        'Token authentication: verify, issue, list, rotate and revoke access keys. The same procedures as ' +
        'tRPC at /trpc, as REST. Authenticate with `Authorization: Bearer <access key | session JWT>`. ' +
        'Errors are RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`, `detail`, ' +
        '`instance` and the stable `reason`.',
      version: '1.0.0',
      baseUrl: REST_BASE,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'an access key (tk_live_…, tk_test_…) or a session JWT',
        },
      },
    },
  )
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries(item) as Array<[string, { responses: Record<string, unknown> }]>) {
      const route = routes.find((candidate) => candidate.method === method.toUpperCase() && candidate.template === path)
      const meta = route?.procedure._def.meta as Meta | undefined
      const statuses = new Set<number>([503])
      if (method !== 'get' || route?.procedure._def.inputs.length) statuses.add(400)
      if (meta?.openapi?.protect !== false) statuses.add(401).add(403)
      // A public operation says so: no security requirement at all.
      else (operation as { security?: unknown[] }).security = []
      if (path.includes('{')) statuses.add(404)
      for (const status of extraStatuses(meta)) statuses.add(status)
      operation.responses = {
        '200': operation.responses['200'],
        ...Object.fromEntries(
          [...statuses]
            .sort()
            .map((status) => [String(status), { $ref: `#/components/responses/${ERROR_RESPONSES[status]?.name}` }]),
        ),
      }
    }
  }
  const schemas = Object.fromEntries(
    Object.entries(doc.components?.schemas ?? {}).filter(([name]) => !name.startsWith('error.')),
  )
  // No licence is granted: the document says so rather than leaving it unsaid.
  doc.info.license = { name: 'Proprietary; all rights reserved', identifier: 'LicenseRef-Proprietary' }
  doc.components = {
    ...doc.components,
    schemas: { ...schemas, Problem: problemSchema() },
    responses: Object.fromEntries(
      Object.entries(ERROR_RESPONSES).map(([status, { name, description, example, headers }]) => [
        name,
        {
          description,
          ...(headers && { headers }),
          content: {
            [PROBLEM_JSON]: {
              schema: { $ref: '#/components/schemas/Problem' },
              example: {
                type: `${PROBLEM_TYPE_BASE}${example}`,
                title: ERROR_REASONS[example].title,
                status: Number(status),
                detail: description,
                instance: '/api/v1/tokens',
                reason: example,
              },
            },
          },
        },
      ]),
    ),
  }
  return doc
}

function extraStatuses(meta: Meta | undefined): number[] {
  const extra = meta?.openapi?.errorResponses
  if (!extra) return []
  return Array.isArray(extra) ? extra : Object.keys(extra).map(Number)
}

function problemSchema(): NonNullable<Components['schemas']>[string] {
  return {
    type: 'object',
    description: 'RFC 9457 problem details, with the stable `reason` beside the standard members',
    required: ['type', 'title', 'status', 'detail', 'reason'],
    properties: {
      type: {
        type: 'string',
        format: 'uri',
        description: `\`${PROBLEM_TYPE_BASE}\` and the reason`,
        examples: [`${PROBLEM_TYPE_BASE}invalid_input`],
      },
      title: { type: 'string', description: 'Fixed per reason', examples: ['Invalid input'] },
      status: { type: 'integer', description: 'The HTTP status', examples: [400] },
      detail: { type: 'string', description: 'For people; may change' },
      instance: { type: 'string', format: 'uri-reference', description: "The request's path" },
      reason: {
        type: 'string',
        description: `A stable snake_case reason, the same as \`error.data.reason\` over tRPC: ${Object.keys(ERROR_REASONS).join(', ')}`,
        enum: Object.keys(ERROR_REASONS),
        examples: ['invalid_input'],
      },
      issues: {
        type: 'array',
        description: 'With invalid_input: the fields at fault',
        items: {
          type: 'object',
          required: ['path', 'message'],
          properties: { path: { type: 'string' }, message: { type: 'string' } },
        },
      },
      missingScopes: {
        type: 'array',
        description: 'With forbidden, when a `tokend:*` scope is what the credential lacks',
        items: { type: 'string' },
      },
      retryAfterMs: { type: 'integer', minimum: 0, description: 'With rate_limited: how long to wait' },
      requestId: { type: 'string', description: "The request's id, as in tokend's log" },
    },
  }
}
