import { readFile } from 'node:fs/promises'
import { Command, InvalidArgumentError } from 'commander'
import { parseMix, runLoadTest } from './loadtest.ts'

/** `pnpm loadtest --url … --key-file …`: a load test of any running tokend (see runLoadTest). */
const positive = (name: string) => (value: string) => {
  const number = Number(value)
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`)
  return number
}

const program = new Command('pnpm loadtest')
  .description('Drive token.verify of a running tokend with a mix of keys; report latency percentiles and errors.')
  .requiredOption('--url <url>', 'base URL of tokend, e.g. http://127.0.0.1:3000')
  .requiredOption(
    '--key-file <path>',
    'file holding a key with tokend:verify (an admin key also issues hit/revoke keys)',
  )
  .option(
    '--mix <weights>',
    'request kinds and their weights: hit, miss, malformed, revoke',
    'hit=70,miss=10,malformed=10,revoke=10',
  )
  .option('--duration <seconds>', 'how long to load', positive('--duration'), 30)
  .option('--rate <n>', 'requests per second in all; 0 = as fast as tokend answers', positive('--rate'), 0)
  .option('--connections <n>', 'keep-alive connections', positive('--connections'), 50)
  .option('--out <dir>', 'where report.md, report.json and latency.svg go', 'loadtest-report')
  .parse()

const options = program.opts<{
  url: string
  keyFile: string
  mix: string
  duration: number
  rate: number
  connections: number
  out: string
}>()

try {
  const report = await runLoadTest({
    url: options.url,
    key: (await readFile(options.keyFile, 'utf8')).trim(),
    mix: parseMix(options.mix),
    durationS: options.duration,
    rate: options.rate,
    connections: options.connections,
    outDir: options.out,
    log: (line) => process.stdout.write(`${line}\n`),
  })
  const { latency, errors } = report
  const sum = (counts: Record<string, number>) => Object.values(counts).reduce((total, count) => total + count, 0)
  const unexpected = sum(errors.unexpected)
  process.stdout.write(
    [
      '',
      `${report.requests} responses, ${Math.round(report.rps)} req/s`,
      `latency ms: p50 ${latency.p50.toFixed(2)}  p90 ${latency.p90.toFixed(2)}  p99 ${latency.p99.toFixed(2)}  ` +
        `p99.9 ${latency.p999.toFixed(2)}  max ${latency.max.toFixed(2)}`,
      `non-2xx: ${JSON.stringify(errors.non2xx)}  timeouts: ${errors.timeouts}  connection errors: ${JSON.stringify(errors.connection)}`,
      `unexpected verify results: ${unexpected === 0 ? 'none' : JSON.stringify(errors.unexpected)}`,
      `report: ${report.files.markdown} (${report.files.json}, ${report.files.svg})`,
      '',
    ].join('\n'),
  )
  // A wrong verify answer is a failure; slowness is for the reader of the report to judge.
  process.exitCode = unexpected === 0 ? 0 : 1
} catch (error) {
  process.stderr.write(`loadtest: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 2
}
