/**
 * Measures what people add to tokend's load (reported, not asserted):
 *  1. login time for an unknown user vs a wrong password (medians of many runs);
 *  2. cache-hit `token.verify` p99 at half the maximum rate (autocannon finds the maximum;
 *     half of it is then sent open-loop), without and with 20 logins/s.
 *
 * tokend runs as its own process pinned to SERVER_CPU; autocannon and this script (which
 * sends the logins) run pinned to LOAD_CPU. Loopback only, bounded durations.
 *
 *   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     taskset -c 0 node --import tsx test/load/people.ts
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Caller, createTestDatabase, freePort, repoRoot } from '@tokend/testing'

const SERVER_CPU = process.env.SERVER_CPU ?? '1'
const LOAD_CPU = process.env.LOAD_CPU ?? '0'
const RUNS = Number(process.env.LOGIN_RUNS ?? 50)
const SECONDS = Number(process.env.SECONDS ?? 10)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const LOGINS_PER_SECOND = 20
const PASSWORD = 'correct horse battery staple'

const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const database = await createTestDatabase(adminUrl)
const dir = await mkdtemp(join(tmpdir(), 'tokend-people-load-'))
const port = await freePort()
const server = spawn('taskset', ['-c', SERVER_CPU, process.execPath, '--import', 'tsx', 'src/main.ts'], {
  cwd: join(repoRoot, 'services/auth'),
  env: {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: database.url,
    PORT: String(port),
    TOKEND_GRPC_PORT: '0',
    HOST: '127.0.0.1',
    // Per-request logging would cost the same in every run; keep it out of the figures.
    LOG_LEVEL: 'warn',
    TOKEND_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.key'),
    TOKEND_LOGIN_MAX_PER_PAIR: '10000',
    TOKEND_LOGIN_MAX_PER_USERNAME: '10000',
    TOKEND_LOGIN_MAX_PER_ADDRESS: '100000',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
})
const exited = new Promise((resolve) => server.on('exit', resolve))

try {
  await waitForReady(`http://127.0.0.1:${port}`)
  const operator = new Caller(`http://127.0.0.1:${port}`, (await readFile(join(dir, 'bootstrap.key'), 'utf8')).trim())
  const key = (await operator.mutation('token.issue', { name: 'load', environment: 'live' })).body.result.data.token
  const username = `load${Date.now().toString(36)}`
  await operator.mutation('user.create', { username, email: 'load@example.com', password: PASSWORD, role: 'admin' })
  const anonymous = operator.as(undefined)

  // 1. Unknown user vs wrong password, interleaved so drift hits both alike.
  const timeLogin = async (name: string) => {
    const started = performance.now()
    const reply = await anonymous.mutation('auth.login', { username: name, password: 'not the password 1' })
    if (reply.status !== 401) throw new Error(`expected 401, got ${reply.status}`)
    return performance.now() - started
  }
  for (let i = 0; i < 5; i++) await timeLogin(username) // warm-up
  const unknown: number[] = []
  const wrong: number[] = []
  for (let i = 0; i < RUNS; i++) {
    unknown.push(await timeLogin(`nobody${i}x${Date.now().toString(36)}`))
    wrong.push(await timeLogin(username))
  }
  report('login, unknown user (ms)', summary(unknown))
  report('login, wrong password (ms)', summary(wrong))

  // 2. Cache-hit verify: the maximum rate, then p99 at half of it without and with logins.
  const url = `http://127.0.0.1:${port}/trpc/token.verify`
  const body = JSON.stringify({ token: key })
  const headers = ['-H', `authorization=Bearer ${operator.key}`, '-H', 'content-type=application/json']
  const cannon = async (extra: string[]) => {
    const args = ['-c', LOAD_CPU, join(repoRoot, 'node_modules/.bin/autocannon'), '--json', '-m', 'POST', '-b', body]
    const { stdout } = await promisify(execFile)('taskset', [...args, ...headers, ...extra, url], {
      maxBuffer: 64 * 1024 * 1024,
    })
    const result = JSON.parse(stdout)
    return {
      requestsPerSecond: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      max: result.latency.max,
      errors: result.errors + result.non2xx,
    }
  }
  await cannon(['-c', '50', '-d', '3']) // warm-up
  const max = await cannon(['-c', '50', '-d', String(SECONDS)])
  report('verify, maximum rate (50 connections)', max)
  const rate = Math.round(max.requestsPerSecond / 2)
  // autocannon's -R sends each second's quota at full speed, then waits: at "half the rate"
  // it measures saturated bursts. Half the rate is sent here open-loop, evenly spaced.
  const atHalf = () => openLoop(rate, SECONDS)
  // Alternate quiet and busy runs, so load from elsewhere on the machine hits both alike.
  const ratios: number[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    const quiet = await atHalf()
    report(`round ${round}: verify at ${rate}/s, no logins`, quiet)
    const { result: busy, logins, statuses } = await withLogins(atHalf)
    report(`round ${round}: verify at ${rate}/s, ${LOGINS_PER_SECOND} logins/s`, busy)
    report(`round ${round}: those logins, successful ones (ms)`, summary(logins))
    report(`round ${round}: those logins, answers by status`, statuses)
    ratios.push(busy.p99 / quiet.p99)
  }
  report('p99 ratio (with logins / without), median of rounds', summary(ratios).median)

  /** Sends `perSecond` verifies evenly spaced for `seconds` over keep-alive connections; latency per request. */
  async function openLoop(perSecond: number, seconds: number) {
    const agent = new Agent({ keepAlive: true, maxSockets: 64 })
    const latencies: number[] = []
    let errors = 0
    const requests: Promise<void>[] = []
    const send = () =>
      new Promise<void>((resolve) => {
        const started = performance.now()
        const request = httpRequest(url, {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${operator.key}`, 'content-type': 'application/json' },
        })
        request.on('response', (response) => {
          response.resume()
          response.on('end', () => {
            if (response.statusCode === 200) latencies.push(performance.now() - started)
            else errors++
            resolve()
          })
        })
        request.on('error', () => {
          errors++
          resolve()
        })
        request.end(body)
      })
    const start = performance.now()
    let sent = 0
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = performance.now() - start
        const due = Math.min(Math.floor((elapsed * perSecond) / 1000), perSecond * seconds)
        for (; sent < due; sent++) requests.push(send())
        if (elapsed >= seconds * 1000) {
          clearInterval(timer)
          resolve()
        }
      }, 2)
    })
    await Promise.all(requests)
    agent.destroy()
    const { median, p90, min, runs } = summary(latencies)
    const sorted = latencies.sort((a, b) => a - b)
    const p99 = sorted[Math.ceil(0.99 * sorted.length) - 1] ?? Number.NaN
    return { sent, ok: runs, errors, min, p50: median, p90, p99: Math.round(p99 * 100) / 100, max: sorted.at(-1) }
  }

  /** Runs `work` while sending LOGINS_PER_SECOND correct logins; waits for every answer. */
  async function withLogins<T>(work: () => Promise<T>) {
    const logins: number[] = []
    const statuses: Record<string, number> = {}
    const inFlight: Promise<void>[] = []
    const timer = setInterval(() => {
      const started = performance.now()
      const login = anonymous.mutation('auth.login', { username, password: PASSWORD }).then(
        (reply) => {
          statuses[reply.status] = (statuses[reply.status] ?? 0) + 1
          if (reply.status === 200) logins.push(performance.now() - started)
        },
        () => {
          statuses.error = (statuses.error ?? 0) + 1
        },
      )
      inFlight.push(login)
    }, 1000 / LOGINS_PER_SECOND)
    const result = await work().finally(() => clearInterval(timer))
    await Promise.all(inFlight)
    return { result, logins, statuses }
  }
} finally {
  server.kill('SIGTERM')
  await exited
  await database.drop()
  await rm(dir, { recursive: true, force: true })
}

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN
  const round = (value: number) => Math.round(value * 100) / 100
  return { runs: sorted.length, median: round(at(0.5)), p90: round(at(0.9)), min: round(sorted[0] ?? Number.NaN) }
}

function report(what: string, value: unknown) {
  process.stdout.write(`${what}: ${JSON.stringify(value)}\n`)
}

async function waitForReady(base: string) {
  for (let i = 0; i < 600; i++) {
    const ready = await fetch(`${base}/readyz`).then(
      (response) => response.ok,
      () => false,
    )
    if (ready) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error('tokend did not become ready')
}
