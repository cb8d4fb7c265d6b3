/**
 * A short measurement for issue 17, apart from `pnpm bench`: cache-hit `token.verify`
 * with TOKEND_WORKERS=1 against 2 (servers on both cores), and with tracing off against
 * on (one worker on core 0, every request traced and exported to a local sink). The load
 * generator is pinned to core 1 throughout (load.ts). Rounds alternate between the
 * configurations; each figure is the median over rounds, with its range.
 *
 *   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     node --conditions=tokend-source --import tsx test/bench/workers-tracing.ts [rounds] [seconds]
 */
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createTestDatabase, freePort, repoRoot } from '@tokend/testing'
import { runLoad } from './load.ts'
import { canPin, killChildren, track } from './processes.ts'

const rounds = Number(process.argv[2] ?? 3)
const seconds = Number(process.argv[3] ?? 5)
const adminUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL
if (!adminUrl) throw new Error('set TEST_DATABASE_URL to a Postgres superuser URL')

const sink = createServer((req, res) => {
  req.resume()
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
})
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`

const database = await createTestDatabase(adminUrl)
const keyFile = join('/tmp', `tokend-wt-${process.pid}.key`)

interface Config {
  name: string
  cores: string
  env: Record<string, string>
}
const configs: Config[] = [
  { name: 'workers=1 (cores 0-1)', cores: '0,1', env: { TOKEND_WORKERS: '1' } },
  { name: 'workers=2 (cores 0-1)', cores: '0,1', env: { TOKEND_WORKERS: '2' } },
  { name: 'tracing off (core 0)', cores: '0', env: {} },
  {
    name: 'tracing on (core 0)',
    cores: '0',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_BSP_SCHEDULE_DELAY: '1000', OTEL_BSP_MAX_QUEUE_SIZE: '20000' },
  },
]

async function start(config: Config) {
  const port = await freePort()
  const args = ['--max-semi-space-size=64', '--conditions=tokend-source', '--import', 'tsx', 'src/main.ts']
  const child = track(
    spawn(canPin ? 'taskset' : process.execPath, canPin ? ['-c', config.cores, process.execPath, ...args] : args, {
      cwd: join(repoRoot, 'services/auth'),
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: database.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        TOKEND_GRPC_PORT: '0',
        TOKEND_BOOTSTRAP_TOKEN_FILE: keyFile,
        LOG_LEVEL: 'warn',
        ...config.env,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  )
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    const status = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      () => 0,
    )
    if (status === 200) break
    if (i > 1200) throw new Error(`${config.name} did not start`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // With workers, the primary reports ready only once all of them are up: wait for the count.
  const workers = Number(config.env.TOKEND_WORKERS ?? 1)
  while (sample(await scrape(url), 'tokend_change_channel_up') < workers) await new Promise((r) => setTimeout(r, 200))
  return { ...config, url, child }
}

async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text()
}

function sample(text: string, name: string): number {
  let sum = 0
  for (const line of text.split('\n'))
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').at(-1))
  return sum
}

try {
  const servers = []
  for (const config of configs) servers.push(await start(config))
  const { readFile } = await import('node:fs/promises')
  const key = (await readFile(keyFile, 'utf8')).trim()
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
  const issued = await fetch(`${servers[0]?.url}/trpc/token.issue`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'bench', environment: 'live' }),
  }).then((r) => r.json() as Promise<{ result: { data: { token: string } } }>)
  const body = JSON.stringify({ token: issued.result.data.token })

  const results = new Map<string, { rps: number[]; cpuUs: number[] }>()
  for (let round = 0; round <= rounds; round++) {
    for (const server of servers) {
      const before = await scrape(server.url)
      const load = await runLoad({
        url: `${server.url}/trpc/token.verify`,
        headers,
        bodies: [body],
        connections: 50,
        durationS: round === 0 ? 2 : seconds,
      })
      const after = await scrape(server.url)
      if (load.non2xx > 0 || load.errors > 0) throw new Error(`${server.name}: ${JSON.stringify(load.statusCodes)}`)
      const verifies = sample(after, 'tokend_verifies_total') - sample(before, 'tokend_verifies_total')
      const cpu = sample(after, 'process_cpu_seconds_total') - sample(before, 'process_cpu_seconds_total')
      if (round === 0) continue // warm-up
      const entry = results.get(server.name) ?? { rps: [], cpuUs: [] }
      entry.rps.push(load.rps)
      entry.cpuUs.push((cpu / verifies) * 1e6)
      results.set(server.name, entry)
      process.stderr.write(
        `round ${round} ${server.name}: ${Math.round(load.rps)} req/s, ${((cpu / verifies) * 1e6).toFixed(1)} µs CPU/verify\n`,
      )
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
  const range = (values: number[]) => `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`
  process.stdout.write(`| configuration | req/s (median, range) | CPU µs per verify (median, range) |\n|---|---|---|\n`)
  for (const [name, { rps, cpuUs }] of results) {
    process.stdout.write(
      `| ${name} | ${Math.round(median(rps))} (${range(rps)}) | ${median(cpuUs).toFixed(1)} (${range(cpuUs)}) |\n`,
    )
  }
  for (const server of servers) {
    server.child.kill('SIGTERM')
    await new Promise((resolve) => server.child.once('exit', resolve))
  }
} finally {
  killChildren()
  sink.close()
  await database.drop().catch(() => {})
}
