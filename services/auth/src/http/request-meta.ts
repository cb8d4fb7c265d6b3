import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import proxyaddr from 'proxy-addr'
import type { RequestMeta } from '../principal.ts'

/** Which hops' X-Forwarded-For may be believed: express's `trust proxy` function. */
export type Trust = (address: string, hop: number) => boolean

/** What every transport knows of a request before it reads it. */
export interface RequestInfo {
  id: string
  trust: Trust
}

/**
 * `TOKEND_TRUST_PROXY` as express reads `trust proxy`: `none`/`false` (trust nobody: the
 * socket's address is the client's), `true`, a hop count, or addresses and subnets
 * (`loopback`, `10.0.0.0/8, 127.0.0.1`).
 */
export function compileTrust(setting: string | false): Trust {
  const value = setting === false ? 'false' : setting.trim()
  if (value === '' || value === 'false' || value === 'none') return () => false
  if (value === 'true') return () => true
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  return proxyaddr.compile(value.split(/\s*,\s*/))
}

const REQUEST_ID = /^[\w.:-]{1,128}$/
// Unique per process; a counter after it makes ids without a random draw per request.
const PROCESS_ID = randomBytes(6).toString('hex')
let requests = 0

/** The caller's `x-request-id` when it is a sane one, else a new one; echoed on the answer. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const id = requestIdOf(req)
  res.setHeader('x-request-id', id)
  return id
}

/**
 * The client's address from a peer's address and the `X-Forwarded-For` it sent, per
 * `trust`, as express computes `req.ip`: for requests that reach tokend described
 * rather than in person (Envoy's ext_authz names the downstream peer). Undefined
 * without a peer address.
 */
export function clientAddress(
  remoteAddress: string | undefined,
  forwardedFor: string | undefined,
  trust: Trust,
): string | undefined {
  if (!remoteAddress) return undefined
  const headers = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }
  // The shape of an HTTP request that proxy-addr reads.
  const req = { headers, socket: { remoteAddress }, connection: { remoteAddress } } as unknown as IncomingMessage
  return proxyaddr(req, trust)
}

/** `requestId` for a transport that writes all its headers at once (the verify fast path). */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : `${PROCESS_ID}-${(++requests).toString(36)}`
}

/** Where a request came from, for audit events and throttles: the client's address per `trust`. */
export function requestMeta(req: IncomingMessage, info: RequestInfo): RequestMeta {
  return new LazyRequestMeta(req, info)
}

/**
 * The address is worked out when first read (audit events and throttles): a verify never
 * pays for parsing X-Forwarded-For. A class, because an object literal with its own getter
 * gets a hidden class of its own, kept in V8's old space: every request then outlived
 * the young-generation GCs (30 % of all bytes promoted, 10 ms scavenges; issue 17).
 * Spreading it would lose the getter: copy it with `metaFields`.
 */
class LazyRequestMeta implements RequestMeta {
  readonly requestId: string
  readonly userAgent: string | null
  readonly #req: IncomingMessage
  readonly #trust: Trust
  #address: string | undefined

  constructor(req: IncomingMessage, info: RequestInfo) {
    this.requestId = info.id
    this.userAgent = req.headers['user-agent']?.slice(0, 512) ?? null
    this.#req = req
    this.#trust = info.trust
  }

  get address(): string {
    this.#address ??= proxyaddr(this.#req, this.#trust)
    return this.#address
  }
}
