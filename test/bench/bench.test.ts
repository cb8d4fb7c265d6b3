import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, freshDatabase, type ServiceProcess, startTokendProcess } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runLoadTest } from './loadtest.ts'

/** `pnpm loadtest`'s core against a real tokend, briefly: it measures, judges every answer and draws. */
let tokend: ServiceProcess
let dir: string
let key: string
let drop: () => Promise<void>

beforeAll(async () => {
  const database = await freshDatabase()
  drop = database.drop
  dir = await mkdtemp(join(tmpdir(), 'tokend-loadtest-'))
  tokend = await startTokendProcess({
    DATABASE_URL: database.url,
    PORT: String(await freePort()),
    TOKEND_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.key'),
  })
  key = (await readFile(join(dir, 'bootstrap.key'), 'utf8')).trim()
})

afterAll(async () => {
  await tokend?.stop()
  await drop?.()
  await rm(dir, { recursive: true, force: true })
})

const run = (mix: Record<string, number>, outDir: string) =>
  runLoadTest({ url: tokend.url, key, mix, durationS: 2, rate: 200, connections: 10, outDir })

describe('pnpm loadtest', () => {
  it('reports latency percentiles, no unexpected answer for hits, and an SVG histogram', async () => {
    const report = await run({ hit: 1 }, join(dir, 'hit'))
    expect(report.requests).toBeGreaterThan(0)
    for (const value of [report.latency.p50, report.latency.p90, report.latency.p99, report.latency.p999]) {
      expect(value).toBeGreaterThan(0)
    }
    expect(report.latency.p50).toBeLessThanOrEqual(report.latency.p99)
    expect(report.errors).toEqual({ non2xx: {}, timeouts: 0, connection: {}, unexpected: {} })
    expect(report.byKind.hit?.unexpected).toBe(0)
    const svg = await readFile(report.files.svg, 'utf8')
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    expect(svg).toContain('<rect')
    expect(await readFile(report.files.markdown, 'utf8')).toContain('![latency histogram](latency.svg)')
  })

  it('revokes keys while loading and sees every one turn REVOKED', async () => {
    const report = await run({ miss: 1, malformed: 1, revoke: 2 }, join(dir, 'mix'))
    expect(report.errors.unexpected).toEqual({})
    expect(report.byKind.miss?.requests).toBeGreaterThan(0)
    expect(report.byKind.malformed?.requests).toBeGreaterThan(0)
    const revoked = report.revocations.filter((revocation) => revocation.revokedAtS !== undefined)
    expect(revoked.length).toBeGreaterThan(0)
    for (const revocation of revoked) expect(revocation.afterRun).toBe('REVOKED')
  })
})
