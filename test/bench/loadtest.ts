import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKey } from '@tokend/keys'
import { Caller } from '@tokend/testing'
import autocannon from 'autocannon'
import { type Bucket, histogramSvg, latencyBuckets } from './histogram-svg.ts'
import { type Percentiles, summarize } from './stats.ts'

export const KINDS = ['hit', 'miss', 'malformed', 'revoke'] as const
export type Kind = (typeof KINDS)[number]
export type Mix = Partial<Record<Kind, number>>

export interface LoadTestOptions {
  /** Base URL of a running tokend (or of replicas behind a load balancer). */
  url: string
  /** A key holding `tokend:verify`; an admin key also issues the keys for `hit` and `revoke`. */
  key: string
  mix: Mix
  durationS: number
  /** Requests per second in all; 0 sends as fast as tokend answers. */
  rate: number
  connections: number
  /** Folder for report.md, report.json and latency.svg. */
  outDir: string
  log?: (line: string) => void
}

/** How long a revoked key may still be accepted through another replica (SPEC §11 P6's maximum). */
export const REVOCATION_GRACE_MS = 250
const HIT_KEYS = 5
const REVOKE_KEYS = 8

export interface Revocation {
  id: string
  /** Seconds into the run when the revoke call began. */
  revokedAtS?: number
  /** How long the revoke call took, ms. */
  revokeCallMs?: number
  /** ms from the revoke call's start to the first REVOKED answer of a verify. */
  firstRejectedMs?: number
  /** Verifies that started after the revoke call returned and still accepted the key. */
  acceptedAfter: number
  /** The answer to one verify after the run. */
  afterRun?: string
}

export interface LoadTestReport {
  url: string
  startedAt: string
  options: { mix: Mix; durationS: number; rate: number; connections: number }
  requests: number
  durationS: number
  rps: number
  latency: Percentiles
  byKind: Record<string, { requests: number; p50: number; p99: number; unexpected: number }>
  errors: {
    /** Answers other than 200, by status. */
    non2xx: Record<string, number>
    timeouts: number
    /** Connection errors by code. */
    connection: Record<string, number>
    /** Verify answers that contradict what the request's kind must get, e.g. "hit: expected valid, got NOT_FOUND". */
    unexpected: Record<string, number>
  }
  revocations: Revocation[]
  histogram: Bucket[]
  files: { markdown: string; json: string; svg: string }
}

/** Parses `hit=70,miss=10,malformed=10,revoke=10`. */
export function parseMix(text: string): Mix {
  const mix: Mix = {}
  for (const part of text.split(',')) {
    const [kind, weight] = part.split('=').map((word) => word.trim())
    if (!KINDS.includes(kind as Kind)) throw new Error(`unknown kind "${kind}" in --mix (kinds: ${KINDS.join(', ')})`)
    const value = Number(weight)
    if (!Number.isFinite(value) || value < 0) throw new Error(`--mix: ${kind} needs a weight ≥ 0, got "${weight}"`)
    mix[kind as Kind] = value
  }
  if (Object.values(mix).reduce((sum, value) => sum + value, 0) <= 0) throw new Error('--mix: all weights are 0')
  return mix
}

interface RequestState {
  kind: Kind
  token: string
  sentAt: number
  revocation?: RevocationState
}

interface RevocationState extends Revocation {
  token: string
  startedAt?: number
  returnedAt?: number
}

/**
 * Drives `token.verify` of a running tokend with a mix of request kinds, checks every
 * answer against what its kind must get, and writes a report with a latency chart.
 *
 * - hit: keys it issues beforehand (in a new account when the key may create one);
 * - miss: a fresh well-formed unknown key per request (NOT_FOUND);
 * - malformed: lookalikes that fail the format or checksum (MALFORMED);
 * - revoke: keys it issues and verifies, then revokes one by one during the run; once
 *   a revoke call has returned, the key must be answered REVOKED (behind a load
 *   balancer other replicas get REVOCATION_GRACE_MS).
 */
export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestReport> {
  const log = options.log ?? (() => {})
  const started = new Date()
  const url = options.url.replace(/\/+$/, '')
  const caller = new Caller(url, options.key)
  const { prefix, environment } = keyShape(options.key)
  const weights = KINDS.map((kind) => [kind, options.mix[kind] ?? 0] as const).filter(([, weight]) => weight > 0)

  const self = await caller.mutation('token.verify', { token: options.key })
  if (self.status !== 200) {
    throw new Error(`${url} refused token.verify with this key (${self.status}); it needs the tokend:verify scope`)
  }
  const wants = (kind: Kind) => weights.some(([name]) => name === kind)
  const hitKeys = wants('hit') ? await hitPool(caller, log) : []
  const revocations: RevocationState[] = wants('revoke')
    ? (await issuePool(caller, 'loadtest-revoke', REVOKE_KEYS, log)).map((key) => ({ ...key, acceptedAfter: 0 }))
    : []
  for (const key of [...hitKeys, ...revocations.map((revocation) => revocation.token)]) {
    const answer = await caller.mutation('token.verify', { token: key })
    if (answer.body?.result?.data?.valid !== true)
      throw new Error(`a key issued for the run does not verify: ${JSON.stringify(answer.body)}`)
  }
  const malformed = lookalikes(prefix, environment)

  const total = weights.reduce((sum, [, weight]) => sum + weight, 0)
  const pickKind = (): Kind => {
    let left = Math.random() * total
    for (const [kind, weight] of weights) {
      left -= weight
      if (left < 0) return kind
    }
    return (weights.at(-1) as readonly [Kind, number])[0]
  }
  const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)] as T
  const tokenFor = (state: RequestState) => {
    switch (state.kind) {
      case 'hit':
        return pick(hitKeys)
      case 'miss':
        return generateKey(prefix, environment)
      case 'malformed':
        return pick(malformed)
      case 'revoke':
        state.revocation = pick(revocations)
        return state.revocation.token
    }
  }

  const latencies: number[] = []
  const byKind = new Map<Kind, { latencies: number[]; unexpected: number }>(
    weights.map(([kind]) => [kind, { latencies: [], unexpected: 0 }]),
  )
  const errors: LoadTestReport['errors'] = { non2xx: {}, timeouts: 0, connection: {}, unexpected: {} }
  const count = (record: Record<string, number>, key: string) => {
    record[key] = (record[key] ?? 0) + 1
  }
  let second = { responses: 0, errors: 0, unexpected: 0 }

  const judge = (state: RequestState, status: number, body: string) => {
    const kindStats = byKind.get(state.kind)
    kindStats?.latencies.push(performance.now() - state.sentAt)
    if (status !== 200) return
    let data: { valid?: boolean; reason?: string } | undefined
    try {
      data = JSON.parse(body)?.result?.data
    } catch {}
    const got = data?.valid === true ? 'valid' : (data?.reason ?? 'an unreadable answer')
    const expected = expectation(state, got)
    if (expected === undefined || expected === got) return
    count(errors.unexpected, `${state.kind}: expected ${expected}, got ${got}`)
    if (kindStats) kindStats.unexpected++
    second.unexpected++
  }

  const path = new URL(`${url}/trpc/token.verify`)
  const cannon: autocannon.Options = {
    url: path.origin,
    connections: options.connections,
    duration: options.durationS,
    ...(options.rate > 0 ? { overallRate: options.rate } : {}),
    requests: [
      {
        method: 'POST',
        path: path.pathname,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${options.key}` },
        setupRequest: (request, context) => {
          const state = context as RequestState
          state.kind = pickKind()
          state.token = tokenFor(state)
          state.sentAt = performance.now()
          return { ...request, body: JSON.stringify({ token: state.token }) }
        },
        onResponse: (status, body, context) => judge(context as RequestState, status, body),
      },
    ],
    setupClient: (client) => {
      client.on('response', (_status: number, _bytes: number, ms: number) => {
        latencies.push(ms)
        second.responses++
      })
    },
  }
  const begin = performance.now()
  const timers = revocations.map((revocation, i) =>
    setTimeout(
      () => void revoke(caller, revocation, begin).catch((error) => log(`revoke failed: ${error.message}`)),
      ((i + 1) / (revocations.length + 1)) * options.durationS * 1000,
    ),
  )
  const progress = setInterval(() => {
    const elapsed = Math.round((performance.now() - begin) / 1000)
    log(
      `${String(elapsed).padStart(4)} s  ${String(second.responses).padStart(7)} req/s  ` +
        `errors ${second.errors}  unexpected ${second.unexpected}`,
    )
    second = { responses: 0, errors: 0, unexpected: 0 }
  }, 1000)
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(cannon, (error, result) => (error ? reject(error) : resolve(result)))
    instance.on('response', (_client, status) => {
      if (status < 200 || status >= 300) {
        count(errors.non2xx, String(status))
        second.errors++
      }
    })
    instance.on('reqError', (error: Error & { code?: string }) => {
      if (error.message === 'request timed out') errors.timeouts++
      else count(errors.connection, error.code ?? error.message)
      second.errors++
    })
  })
  clearInterval(progress)
  for (const timer of timers) clearTimeout(timer)

  for (const revocation of revocations) {
    if (revocation.returnedAt === undefined) continue
    const answer = await caller.mutation('token.verify', { token: revocation.token })
    revocation.afterRun =
      answer.body?.result?.data?.valid === true ? 'valid' : (answer.body?.result?.data?.reason ?? String(answer.status))
    if (revocation.afterRun !== 'REVOKED')
      count(errors.unexpected, `revoke: expected REVOKED after the run, got ${revocation.afterRun}`)
  }

  const latency = summarize(latencies)
  const histogram = latencyBuckets(latencies)
  const files = {
    markdown: join(options.outDir, 'report.md'),
    json: join(options.outDir, 'report.json'),
    svg: join(options.outDir, 'latency.svg'),
  }
  const report: LoadTestReport = {
    url,
    startedAt: started.toISOString(),
    options: { mix: options.mix, durationS: options.durationS, rate: options.rate, connections: options.connections },
    requests: latencies.length,
    durationS: result.duration,
    rps: latencies.length / result.duration,
    latency,
    byKind: Object.fromEntries(
      [...byKind].map(([kind, stats]) => {
        const summary = summarize(stats.latencies)
        return [kind, { requests: summary.count, p50: summary.p50, p99: summary.p99, unexpected: stats.unexpected }]
      }),
    ),
    errors,
    revocations: revocations.map(({ id, revokedAtS, revokeCallMs, firstRejectedMs, acceptedAfter, afterRun }) => ({
      id,
      revokedAtS,
      revokeCallMs,
      firstRejectedMs,
      acceptedAfter,
      afterRun,
    })),
    histogram,
    files,
  }
  await mkdir(options.outDir, { recursive: true })
  const title = `token.verify latency, ${report.requests} responses, ${url}`
  await writeFile(
    files.svg,
    histogramSvg(histogram, { p50: latency.p50, p99: latency.p99, 'p99.9': latency.p999 }, title),
  )
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`)
  await writeFile(files.markdown, loadTestMarkdown(report))
  return report
}

/** What a request of this kind must be answered, or undefined when either answer is right. */
function expectation(state: RequestState, got: string): string | undefined {
  switch (state.kind) {
    case 'hit':
      return 'valid'
    case 'miss':
      return 'NOT_FOUND'
    case 'malformed':
      return 'MALFORMED'
    case 'revoke': {
      const revocation = state.revocation as RevocationState
      // Answered before the revoke call began: the key was still good.
      if (revocation.startedAt === undefined) return 'valid'
      if (got === 'REVOKED') revocation.firstRejectedMs ??= performance.now() - revocation.startedAt
      // Sent before the revoke call returned: either answer is right.
      if (revocation.returnedAt === undefined || state.sentAt < revocation.returnedAt) return undefined
      if (got === 'valid') {
        revocation.acceptedAfter++
        if (state.sentAt < revocation.returnedAt + REVOCATION_GRACE_MS) return undefined
      }
      return 'REVOKED'
    }
  }
}

async function revoke(caller: Caller, revocation: RevocationState, begin: number): Promise<void> {
  revocation.startedAt = performance.now()
  const reply = await caller.mutation('token.revoke', { id: revocation.id })
  if (reply.status !== 200) throw new Error(`token.revoke answered ${reply.status}: ${JSON.stringify(reply.body)}`)
  revocation.returnedAt = performance.now()
  revocation.revokedAtS = Math.round((revocation.startedAt - begin) / 100) / 10
  revocation.revokeCallMs = revocation.returnedAt - revocation.startedAt
}

/** The prefix and environment of the caller's key, so generated keys look like this deployment's. */
function keyShape(key: string): { prefix: string; environment: 'live' | 'test' } {
  const match = /^([a-z]{2,8})_(live|test)_/.exec(key)
  return { prefix: match?.[1] ?? 'tk', environment: (match?.[2] as 'live' | 'test' | undefined) ?? 'live' }
}

/** Lookalikes a scanner or client must reject offline: a changed character, another prefix, a cut-off key. */
function lookalikes(prefix: string, environment: 'live' | 'test'): string[] {
  return Array.from({ length: 300 }, (_, i) => {
    const key = generateKey(prefix, environment)
    const at = key.length - 12
    switch (i % 3) {
      case 0:
        return key.slice(0, at) + (key[at] === 'a' ? 'b' : 'a') + key.slice(at + 1)
      case 1:
        return `${prefix === 'zz' ? 'yy' : 'zz'}${key.slice(prefix.length)}`
      default:
        return key.slice(0, -1)
    }
  })
}

/** Keys for the hit kind; a key that may not issue any verifies itself. */
async function hitPool(caller: Caller, log: (line: string) => void): Promise<string[]> {
  const probe = await caller.query('me')
  if (probe.body?.result?.data?.role !== 'admin') {
    log('the key is not an admin key: hits verify the key itself')
    return [caller.key as string]
  }
  return (await issuePool(caller, 'loadtest-hit', HIT_KEYS, log)).map((key) => key.token)
}

/**
 * Issues `count` keys, in a new account when the key may create one (so the run does
 * not use up its own account's key limits), waiting out the creation rate limit.
 */
async function issuePool(
  caller: Caller,
  name: string,
  count: number,
  log: (line: string) => void,
): Promise<{ id: string; token: string }[]> {
  const account = await caller.mutation('account.create', { name: `${name} ${new Date().toISOString()}`, plan: 'paid' })
  const accountId = account.status === 200 ? (account.body.result.data.id as string) : undefined
  const keys: { id: string; token: string }[] = []
  while (keys.length < count) {
    const reply = await caller.mutation('token.issue', { name, environment: 'live', accountId })
    if (reply.status === 429) {
      const waitS = Number(reply.headers.get('retry-after') ?? 5)
      log(`the key creation limit is reached: waiting ${waitS} s (${keys.length}/${count} ${name} keys)`)
      await new Promise((resolve) => setTimeout(resolve, waitS * 1000))
      continue
    }
    if (reply.status !== 200) {
      throw new Error(
        `could not issue ${name} keys: token.issue answered ${reply.status} ${JSON.stringify(reply.body)}`,
      )
    }
    keys.push(reply.body.result.data)
  }
  return keys
}

const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '—')

export function loadTestMarkdown(report: LoadTestReport): string {
  const { options, latency, errors } = report
  const mix = Object.entries(options.mix)
    .map(([kind, weight]) => `${kind}=${weight}`)
    .join(',')
  const lines = [
    '# tokend load test',
    '',
    `${report.url}, ${report.startedAt}: mix ${mix}, ${options.durationS} s, ` +
      `${options.rate > 0 ? `${options.rate} req/s` : 'as fast as it answers'}, ${options.connections} connections.`,
    '',
    `**${report.requests} responses in ${report.durationS} s (${Math.round(report.rps)} req/s).**`,
    '',
    '| p50 | p90 | p99 | p99.9 | max | mean |',
    '|---|---|---|---|---|---|',
    `| ${[latency.p50, latency.p90, latency.p99, latency.p999, latency.max, latency.mean].map(ms).join(' ms | ')} ms |`,
    '',
    '![latency histogram](latency.svg)',
    '',
    '## By kind',
    '',
    '| kind | responses | p50 ms | p99 ms | unexpected answers |',
    '|---|---|---|---|---|',
    ...Object.entries(report.byKind).map(
      ([kind, stats]) => `| ${kind} | ${stats.requests} | ${ms(stats.p50)} | ${ms(stats.p99)} | ${stats.unexpected} |`,
    ),
    '',
    '## Errors',
    '',
    `- non-2xx answers: ${describeCounts(errors.non2xx)}`,
    `- timeouts: ${errors.timeouts}`,
    `- connection errors: ${describeCounts(errors.connection)}`,
    `- unexpected verify results: ${describeCounts(errors.unexpected)}`,
    '',
  ]
  if (report.revocations.length > 0) {
    lines.push(
      '## Revocations during the run',
      '',
      `A key must be answered REVOKED by every verify that starts after its revoke call returned ` +
        `(through another replica, after at most ${REVOCATION_GRACE_MS} ms).`,
      '',
      '| key | revoke call at | call took | first REVOKED answer after the call began | accepted after it returned | after the run |',
      '|---|---|---|---|---|---|',
      ...report.revocations.map((revocation) =>
        revocation.revokedAtS === undefined
          ? `| ${revocation.id} | not revoked (the run ended first) | | | | |`
          : `| ${revocation.id} | ${revocation.revokedAtS} s | ${ms(revocation.revokeCallMs ?? Number.NaN)} ms | ` +
            `${revocation.firstRejectedMs === undefined ? 'none during the run' : `${ms(revocation.firstRejectedMs)} ms`} | ` +
            `${revocation.acceptedAfter} | ${revocation.afterRun ?? '—'} |`,
      ),
      '',
    )
  }
  return lines.join('\n')
}

function describeCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts)
  return entries.length === 0 ? 'none' : entries.map(([what, count]) => `${what} × ${count}`).join(', ')
}
