import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { TRPCError } from '@trpc/server'
import express from 'express'
import type { Logger } from 'pino'
import { z } from 'zod'
import type { Config } from '../config.ts'
import type { Deps } from '../deps.ts'
import { DomainError, InvalidInputError, UnavailableError } from '../errors.ts'
import { reportError } from '../http/report.ts'
import { type RequestInfo, requestMeta, type Trust } from '../http/request-meta.ts'
import { API_HEADERS, problemOf, sendJson } from '../http/rest.ts'
import type { Actor } from '../principal.ts'
import { toTRPCError } from '../trpc.ts'
import { nulPath } from '../validation.ts'
import { revokeLeaked } from './leaks.ts'

/**
 * GitHub's secret scanning partner program (SPEC §14): GitHub finds strings that look
 * like tokend keys in public code and POSTs them here, signed. A report whose
 * signature verifies against one of the configured public keys goes through the §9
 * leak response (`revokeLeaked`: revoked, audited, admins mailed); anything else is
 * 401 and changes nothing.
 *
 * The signature (`Github-Public-Key-Signature`) is ECDSA P-256 with SHA-256 over the raw
 * body, base64 of its DER encoding; `Github-Public-Key-Identifier` names the key.
 * The answer labels each reported token: `true_positive` when it is one of tokend's
 * keys (revoked now or already), `false_positive` otherwise.
 */
export const SECRET_SCANNING_PATH = '/secret-scanning/github'

/** GitHub's key list format (https://api.github.com/meta/public_keys/secret_scanning). */
const keyList = z.object({
  public_keys: z
    .array(z.object({ key_identifier: z.string().min(1).max(512), key: z.string().min(1).max(8192) }))
    .max(100),
})

const MAX_BODY = 1024 * 1024
const MAX_KEY_LIST = 256 * 1024
/** A fetched key list is fetched again after this, or sooner for an identifier it lacks. */
const URL_TTL_MS = 60 * 60_000
/** At most one fetch for unknown identifiers per this, whatever unsigned callers send. */
const REFETCH_MS = 60_000
const FETCH_TIMEOUT_MS = 5_000

/** One report entry, as GitHub sends it. Extra fields are ignored; every string is bounded. */
const report = z
  .array(
    z.object({
      token: z.string().min(1).max(4096),
      type: z.string().max(256),
      url: z.string().max(4096).optional(),
      source: z.string().max(256).optional(),
    }),
  )
  .min(1)
  .max(1_000)

export interface ReportAnswer {
  token_hash: string
  token_type: string
  label: 'true_positive' | 'false_positive'
}

class BadSignatureError extends DomainError {
  constructor(message: string) {
    super('invalid_token', message)
  }
}

/**
 * The public keys reports may be signed with, from a file (re-read when it changes) and
 * from a URL (fetched on first use, again after an hour, and — at most once a minute —
 * when a report names a key the list lacks, as GitHub rotates keys).
 */
export class PartnerKeys {
  #file: { mtimeMs: number; keys: Map<string, KeyObject> } | undefined
  #fetched: { at: number; keys: Map<string, KeyObject> } | undefined
  #lastFetch = Number.NEGATIVE_INFINITY
  #fetching: Promise<void> | undefined

  constructor(
    readonly options: { file?: string | undefined; url?: string | undefined; logger: Logger },
    private readonly now: () => number = Date.now,
  ) {}

  static fromConfig(config: Config, logger: Logger): PartnerKeys | undefined {
    const file = config.TOKEND_SECRET_SCANNING_KEYS_FILE
    const url = config.TOKEND_SECRET_SCANNING_KEYS_URL
    return file || url ? new PartnerKeys({ file, url, logger }) : undefined
  }

  /** Start-up check: a configured file must exist and hold at least one usable key. */
  async check(): Promise<void> {
    if (!this.options.file) return
    const keys = await this.#readFile().catch((error: unknown) => {
      throw new Error(`TOKEND_SECRET_SCANNING_KEYS_FILE: ${this.options.file} cannot be read as a key list`, {
        cause: error,
      })
    })
    if (keys.size === 0) {
      throw new Error(`TOKEND_SECRET_SCANNING_KEYS_FILE: ${this.options.file} holds no ECDSA P-256 public key`)
    }
  }

  /** The key with this identifier, or undefined. Throws UnavailableError when no source can be read. */
  async get(identifier: string): Promise<KeyObject | undefined> {
    const { file, url } = this.options
    if (file) {
      const keys = await this.#readFile().catch((error: unknown) => {
        throw new UnavailableError(error, 'the secret scanning key file cannot be read')
      })
      const key = keys.get(identifier)
      if (key) return key
    }
    if (!url) return undefined
    const now = this.now()
    const stale = !this.#fetched || now - this.#fetched.at > URL_TTL_MS
    const unknown = !this.#fetched?.keys.has(identifier) && now - this.#lastFetch > REFETCH_MS
    if (stale || unknown) {
      this.#fetching ??= this.#fetch(url).finally(() => (this.#fetching = undefined))
      await this.#fetching.catch((error: unknown) => {
        // A list fetched before still serves while the source is down.
        if (!this.#fetched) throw new UnavailableError(error, 'the secret scanning public keys cannot be fetched')
        this.options.logger.warn({ err: error }, 'secret scanning keys not refreshed; using the ones fetched before')
      })
    }
    return this.#fetched?.keys.get(identifier)
  }

  async #readFile(): Promise<Map<string, KeyObject>> {
    const file = this.options.file as string
    const { mtimeMs } = await stat(file)
    if (this.#file?.mtimeMs !== mtimeMs) {
      this.#file = { mtimeMs, keys: this.#parse(await readFile(file, 'utf8'), file) }
    }
    return this.#file.keys
  }

  async #fetch(url: string): Promise<void> {
    this.#lastFetch = this.now()
    const response = await fetch(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    })
    if (!response.ok) throw new Error(`${url} answered ${response.status}`)
    if (Number(response.headers.get('content-length') ?? 0) > MAX_KEY_LIST) throw new Error(`${url} is too large`)
    const text = await response.text()
    if (text.length > MAX_KEY_LIST) throw new Error(`${url} is too large`)
    this.#fetched = { at: this.now(), keys: this.#parse(text, url) }
  }

  /** The usable keys of a list: ECDSA P-256 public keys in PEM; anything else is skipped with a warning. */
  #parse(text: string, from: string): Map<string, KeyObject> {
    const list = keyList.parse(JSON.parse(text))
    const keys = new Map<string, KeyObject>()
    for (const entry of list.public_keys) {
      try {
        const key = createPublicKey(entry.key)
        if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
          throw new Error('not an ECDSA P-256 key')
        }
        keys.set(entry.key_identifier, key)
      } catch (error) {
        this.options.logger.warn(
          { err: error, from, keyIdentifier: entry.key_identifier },
          'secret scanning key skipped',
        )
      }
    }
    return keys
  }
}

/** Checks a report's signature; throws BadSignatureError unless it verifies. */
export async function checkSignature(
  keys: PartnerKeys,
  body: Buffer,
  identifier: string | string[] | undefined,
  signature: string | string[] | undefined,
): Promise<void> {
  if (typeof identifier !== 'string' || identifier.length === 0 || identifier.length > 512) {
    throw new BadSignatureError('Github-Public-Key-Identifier is missing')
  }
  if (typeof signature !== 'string' || !/^[A-Za-z0-9+/]{16,1024}={0,2}$/.test(signature.trim())) {
    throw new BadSignatureError('Github-Public-Key-Signature is missing or not base64')
  }
  const key = await keys.get(identifier)
  if (!key) throw new BadSignatureError('no configured public key has this identifier')
  let valid = false
  try {
    valid = verify('sha256', body, { key, dsaEncoding: 'der' }, Buffer.from(signature.trim(), 'base64'))
  } catch {
    valid = false
  }
  if (!valid) throw new BadSignatureError('the signature does not verify')
}

/** The leak response for a verified report, and GitHub's answer to it. */
export async function answerReport(deps: Deps, actor: Actor, body: Buffer): Promise<ReportAnswer[]> {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch (cause) {
    throw new TRPCError({ code: 'PARSE_ERROR', message: 'the body is not valid JSON', cause })
  }
  const parsed = report.safeParse(json)
  if (!parsed.success) throw new TRPCError({ code: 'BAD_REQUEST', message: 'invalid report', cause: parsed.error })
  const nul = nulPath(parsed.data)
  if (nul !== null) throw new InvalidInputError('text must not contain NUL characters (\\u0000)', nul)
  const entries = parsed.data
  const { results } = await revokeLeaked(
    deps,
    actor,
    entries.map((entry) => entry.token),
    { reporter: 'github_secret_scanning', urls: entries.map((entry) => entry.url) },
  )
  return entries.map((entry, index) => ({
    token_hash: createHash('sha256').update(entry.token).digest('hex'),
    token_type: entry.type,
    label: results[index]?.tokenId ? 'true_positive' : 'false_positive',
  }))
}

/** `POST /secret-scanning/github`; without configured keys the route does not exist (404). */
export function secretScanningHttp(deps: Deps, trust: Trust, keys: PartnerKeys | undefined): express.Router {
  const routes = express.Router()
  if (!keys) return routes
  routes.post(
    SECRET_SCANNING_PATH,
    express.raw({ type: () => true, limit: MAX_BODY }),
    async (req: express.Request, res: express.Response) => {
      const info: RequestInfo = { id: String(req.id), trust }
      try {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
        await checkSignature(
          keys,
          body,
          req.headers['github-public-key-identifier'],
          req.headers['github-public-key-signature'],
        )
        // Spreading reads the address now, while the request is still here.
        const actor: Actor = { type: 'partner', id: 'github_secret_scanning', ...requestMeta(req, info) }
        sendJson(res, 200, await answerReport(deps, actor, body))
      } catch (cause) {
        const error = toTRPCError(cause)
        if (cause instanceof BadSignatureError)
          req.log?.warn({ reason: cause.message }, 'secret scanning report refused')
        reportError(deps, error, { path: 'secret-scanning.github', requestId: info.id, log: req.log })
        // No bearer challenge: a partner authenticates by signature, not with a bearer credential.
        const problem = problemOf(error, { instance: SECRET_SCANNING_PATH, requestId: info.id })
        sendJson(res, problem.status, problem, API_HEADERS, 'application/problem+json')
      }
    },
  )
  // Body too large or unreadable: nothing was checked, nothing changes.
  routes.use(
    SECRET_SCANNING_PATH,
    (error: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
      const status = (error as { status?: number }).status
      const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST'
      const problem = problemOf(new TRPCError({ code, message: 'the body cannot be read', cause: error }), {
        instance: SECRET_SCANNING_PATH,
        requestId: String(req.id),
      })
      sendJson(res, problem.status, problem, API_HEADERS, 'application/problem+json')
    },
  )
  return routes
}
