import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query'
import type { AppRouter, RouterInputs, RouterOutputs } from '@tokend/auth'
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client'
import { createTRPCContext } from '@trpc/tanstack-react-query'

export type { RouterInputs, RouterOutputs }
export type TokenInfo = RouterOutputs['token']['list']['items'][number]
export type Principal = RouterOutputs['me']

/**
 * Every call carries `x-tokend-console: 1`: tokend turns the httpOnly session cookie
 * into a credential only on requests that do, which no other site can send.
 */
export const CONSOLE_HEADERS = { 'x-tokend-console': '1' }

export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>()

export function createClient() {
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        // The change stream (SSE): the cookie goes along; tokend admits it for this read-only stream.
        true: httpSubscriptionLink({ url: '/trpc' }),
        false: httpBatchLink({ url: '/trpc', headers: () => CONSOLE_HEADERS }),
      }),
    ],
  })
}

/** What the console needs to know about a failed call. */
export interface Problem {
  kind:
    | 'unauthorized'
    | 'forbidden'
    | 'not_found'
    | 'rate_limited'
    | 'unreachable'
    | 'unavailable'
    | 'invalid'
    | 'other'
  message: string
  status?: number
  issues?: Array<{ path: string; message: string }>
  retryAfterMs?: number
}

export function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem
  if (error instanceof TRPCClientError) {
    const data = error.data as
      | { httpStatus?: number; reason?: string; issues?: Problem['issues']; retryAfterMs?: number }
      | undefined
      | null
    if (!data) return { kind: 'unreachable', message: 'tokend cannot be reached; retrying…' }
    return fromStatus(data.httpStatus ?? 0, data.reason, error.message, data.issues, data.retryAfterMs)
  }
  if (error instanceof TypeError) return { kind: 'unreachable', message: 'tokend cannot be reached; retrying…' }
  return { kind: 'other', message: error instanceof Error ? error.message : String(error) }
}

function fromStatus(
  status: number,
  reason: string | undefined,
  message: string,
  issues?: Problem['issues'],
  retryAfterMs?: number,
): Problem {
  const base = { status, message, ...(issues ? { issues } : {}), ...(retryAfterMs ? { retryAfterMs } : {}) }
  if (status === 401) return { ...base, kind: 'unauthorized' }
  if (status === 403) return { ...base, kind: 'forbidden' }
  if (status === 404) return { ...base, kind: 'not_found' }
  if (status === 429) return { ...base, kind: 'rate_limited' }
  if (status === 503) return { ...base, kind: 'unavailable' }
  if (status === 400 || reason === 'invalid_input') return { ...base, kind: 'invalid' }
  if (status >= 500 || status === 0)
    return { ...base, kind: 'unreachable', message: 'tokend cannot be reached; retrying…' }
  return { ...base, kind: 'other' }
}

/** An error from the console's own endpoints (sign-in, sign-out). */
export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message)
  }
}

async function sessionCall(method: 'POST' | 'DELETE', body?: unknown): Promise<unknown> {
  let response: Response
  try {
    response = await fetch('/console/api/session', {
      method,
      headers: { ...CONSOLE_HEADERS, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? null : JSON.stringify(body),
      credentials: 'same-origin',
    })
  } catch {
    throw new ApiError({ kind: 'unreachable', message: 'tokend cannot be reached; check that it is running.' })
  }
  if (response.status === 204) return null
  const json = (await response.json().catch(() => ({}))) as {
    error?: { code?: string; message?: string; issues?: Problem['issues']; retryAfterMs?: number }
  }
  if (response.ok) return json
  const error = json.error ?? {}
  throw new ApiError(
    fromStatus(response.status, error.code, error.message ?? response.statusText, error.issues, error.retryAfterMs),
  )
}

export function signIn(username: string, password: string) {
  return sessionCall('POST', { username, password }) as Promise<{ username: string; expiresAt: string }>
}

export function signOut() {
  return sessionCall('DELETE')
}

/** Signals a session that has ended (401) to the shell, which asks to sign in again. */
export const sessionEvents = new EventTarget()

export function createQueryClient() {
  const onError = (error: unknown) => {
    if (problemOf(error).kind === 'unauthorized') sessionEvents.dispatchEvent(new Event('expired'))
  }
  return new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      queries: {
        staleTime: 5_000,
        // Only an unreachable tokend is worth retrying; a 4xx answer will not change.
        retry: (count, error) => count < 2 && ['unreachable', 'unavailable'].includes(problemOf(error).kind),
        retryDelay: (attempt) => 1_000 * (attempt + 1),
      },
      mutations: { retry: false },
    },
  })
}
