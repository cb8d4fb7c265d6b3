import * as grpc from '@grpc/grpc-js'
import { findCredential, type Refusal } from '@tokend/keys'
import type { Deps } from '../deps.ts'
import { edgeCheck, PRINCIPAL_HEADERS, parseRequirements } from '../edge/edge-check.ts'
import { clientAddress, type Trust } from '../http/request-meta.ts'
import { grpcContext, grpcError } from './errors.ts'
import type { HeaderValueOption } from './generated/envoy/config/core/v3/HeaderValueOption.ts'
import type { _envoy_service_auth_v3_AttributeContext_HttpRequest__Output as HttpRequest__Output } from './generated/envoy/service/auth/v3/AttributeContext.ts'
import type { AuthorizationHandlers } from './generated/envoy/service/auth/v3/Authorization.ts'
import type { CheckRequest__Output } from './generated/envoy/service/auth/v3/CheckRequest.ts'
import type { CheckResponse } from './generated/envoy/service/auth/v3/CheckResponse.ts'

const PATH = 'envoy.service.auth.v3.Authorization/Check'

/** google.rpc.Code of each refusal's HTTP status. */
const RPC_CODE_OF: Record<Refusal['status'], grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  429: grpc.status.RESOURCE_EXHAUSTED,
}
const HTTP_STATUS_OF = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 429: 'TooManyRequests' } as const

/**
 * Envoy's external authorization (SPEC §12): the credential from the request's headers
 * (or ?accesskey= / ?token= of its path, by §10's rules), the route's requirements
 * from `context_extensions` (`scopes`, `environment`, `audience`, `ratelimit`), decided by
 * `edgeCheck` like every edge path. tokend unable to decide answers UNAVAILABLE, and
 * Envoy denies (unless told to fail open, which tokend's shipped config never does).
 */
export function authorizationService(deps: Deps, trust: Trust): AuthorizationHandlers {
  return {
    Check(call, callback) {
      const ctx = grpcContext(deps, trust, call)
      void check(deps, trust, call.request).then(
        (response) => callback(null, response),
        (cause) => callback(grpcError(deps, cause, { path: PATH, requestId: ctx.meta.requestId ?? '' })),
      )
    },
  }
}

async function check(deps: Deps, trust: Trust, request: CheckRequest__Output): Promise<CheckResponse> {
  const attributes = request.attributes
  const extensions = attributes?.contextExtensions ?? {}
  const required = parseRequirements({
    scopes: extensions.scopes,
    environment: extensions.environment,
    audience: extensions.audience,
    ratelimit: extensions.ratelimit,
  })
  const http = attributes?.request?.http
  const headers = headersOf(http)
  const found = findCredential(headers.authorization, http?.path ?? '')
  // The downstream client: Envoy's peer, or the X-Forwarded-For it was sent by a proxy TOKEND_TRUST_PROXY names.
  const client = clientAddress(attributes?.source?.address?.socketAddress?.address, headers['x-forwarded-for'], trust)
  const answer = await edgeCheck(deps, found, required, client)
  if (!answer.allowed) {
    const { status, headers: refusalHeaders, body } = answer.refusal
    return {
      status: { code: RPC_CODE_OF[status], message: body.error.message },
      deniedResponse: {
        status: { code: HTTP_STATUS_OF[status] },
        headers: headerOptions({
          ...refusalHeaders,
          'content-type': 'application/json',
          'x-tokend-reason': answer.reason,
        }),
        body: JSON.stringify(body),
      },
    }
  }
  const forged = Object.keys(headers).filter(
    (name) => name.startsWith('x-tokend-') && !(PRINCIPAL_HEADERS as readonly string[]).includes(name),
  )
  return {
    status: { code: grpc.status.OK },
    // Set, not appended: a client's own x-tokend-* value of the same name is replaced.
    okResponse: { headers: headerOptions(answer.headers), headersToRemove: forged },
  }
}

/** The request's headers by lower-case name, from `headers` or (encode_raw_headers) `header_map`. */
function headersOf(http: HttpRequest__Output | null | undefined) {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(http?.headers ?? {})) headers[name.toLowerCase()] = value
  for (const header of http?.headerMap?.headers ?? []) {
    const name = header.key.toLowerCase()
    const value = header.value || header.rawValue.toString('utf8')
    headers[name] = name in headers ? `${headers[name]},${value}` : value
  }
  return headers
}

function headerOptions(headers: Record<string, string>): HeaderValueOption[] {
  return Object.entries(headers).map(([key, value]) => ({
    header: { key, value },
    appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
  }))
}
