import { digestKey, generateKey } from '@tokend/keys'
import type { Caller } from '@tokend/testing'
import pg from 'pg'

/** Limits raised for benchmarks: they issue more keys, faster, than an account normally may. */
/** The bench issues and logs in far more than a real account would: the limits step aside. */
export const BENCH_LIMITS = {
  TOKEND_MAX_ACTIVE_KEYS: '1000000',
  TOKEND_KEY_CREATIONS_PER_MINUTE: '1000000',
  TOKEND_LOGIN_MAX_PER_PAIR: '10000',
  TOKEND_LOGIN_MAX_PER_USERNAME: '10000',
  TOKEND_LOGIN_MAX_PER_ADDRESS: '100000',
}

export interface IssuedKey {
  token: string
  id: string
}

/** A tRPC answer's data, or an error naming the call and what came back. */
export async function call<T = any>(caller: Caller, path: string, input?: unknown): Promise<T> {
  const reply = await caller.mutation(path, input)
  if (reply.status !== 200) throw new Error(`${path} answered ${reply.status}: ${JSON.stringify(reply.body)}`)
  return reply.body.result.data as T
}

export async function createAccount(caller: Caller, name: string): Promise<string> {
  return (await call<{ id: string }>(caller, 'account.create', { name, plan: 'paid' })).id
}

export function issueKey(caller: Caller, accountId: string, name = 'bench'): Promise<IssuedKey> {
  return call<IssuedKey>(caller, 'token.issue', {
    name,
    environment: 'live',
    accountId,
    scopes: ['recordings:read', 'recordings:write'],
  })
}

/** Inserts `count` keys straight into Postgres (the API would take minutes); returns their plaintexts. */
export async function insertKeys(databaseUrl: string, accountId: string, count: number): Promise<string[]> {
  const tokens = Array.from({ length: count }, () => generateKey('tk', 'live'))
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    for (let from = 0; from < count; from += 50_000) {
      const chunk = tokens.slice(from, from + 50_000)
      await client.query(
        `insert into access_keys (id, account_id, digest, start, environment, name, role, scopes)
         select id, $1, digest, start, 'live', 'bench-bulk', 'manager', '{recordings:read}'
         from unnest($2::text[], $3::text[], $4::text[]) as t(id, digest, start)`,
        [
          accountId,
          chunk.map((_, i) => `tok_bench${String(from + i).padStart(8, '0')}`),
          chunk.map(digestKey),
          chunk.map((token) => token.slice(0, 'tk_live_'.length + 4)),
        ],
      )
    }
    await client.query('analyze access_keys')
  } finally {
    await client.end()
  }
  return tokens
}

/** Well-formed lookalikes whose checksum fails: one character of the secret changed. */
export function lookalikes(count: number): string[] {
  return Array.from({ length: count }, () => {
    const token = generateKey('tk', 'live')
    const at = 'tk_live_'.length + 10
    const swapped = token[at] === 'a' ? 'b' : 'a'
    return token.slice(0, at) + swapped + token.slice(at + 1)
  })
}

/** The value of one counter or gauge on tokend's `/metrics` (summed over labels). */
export async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  let sum = 0
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(match[1])
  return sum
}

export interface CacheCounters {
  hits: number
  misses: number
  /** Keys looked up in Postgres. */
  loads: number
  /** Queries those lookups took (misses of one moment share one). */
  queries: number
}

export async function cacheCounters(url: string): Promise<CacheCounters> {
  const [hits = 0, misses = 0, loads = 0, queries = 0] = await Promise.all(
    ['cache_hits', 'cache_misses', 'cache_loads', 'key_queries'].map((what) => metric(url, `tokend_${what}_total`)),
  )
  return { hits, misses, loads, queries }
}

export function verifyBody(token: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ token, ...extra })
}
