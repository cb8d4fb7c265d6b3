import { describe, expect, it } from 'vitest'
import { p99Chart } from './chart-svg.ts'
import { cpuTicks, profileBytes } from './measures.ts'
import { comparisonTable } from './report.ts'
import { spread } from './report-types.ts'

describe('the bench helpers', () => {
  it('reads utime + stime from a /proc stat line, whatever the command name holds', () => {
    const rest = 'S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 9 0 100 2000 300'
    expect(cpuTicks(`4242 (node) ${rest}`)).toBe(1290)
    expect(cpuTicks(`4242 (odd ) name (x)) ${rest}`)).toBe(1290)
    expect(() => cpuTicks('garbage')).toThrow(/not a \/proc stat line/)
  })

  it("adds up a sampling heap profile's nodes", () => {
    const leaf = (selfSize: number) => ({ selfSize, children: [] })
    expect(profileBytes({ selfSize: 0, children: [leaf(100), { selfSize: 20, children: [leaf(3), leaf(4)] }] })).toBe(
      127,
    )
    expect(profileBytes(leaf(0))).toBe(0)
  })

  it('shows the spread of repetitions', () => {
    expect(spread([3, 1, 2])).toBe('1–3')
    expect(spread([2.004, 2.001], 2)).toBe('2.00')
    expect(spread([])).toBe('—')
  })

  it('draws p99 against rate as a self-contained SVG with a line and a point per rate', () => {
    const svg = p99Chart(
      [
        { name: 'tokend <1>', points: [1000, 3000, 5000].map((rate) => ({ rate, values: [1, 2, 3] })) },
        { name: 'bare', points: [{ rate: 1000, values: [0.5] }] },
      ],
      'p99 & rate',
    )
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    expect(svg.match(/<polyline /g)).toHaveLength(2)
    expect(svg.match(/<circle /g)).toHaveLength(4)
    expect(svg).toContain('<title>p99 &#38; rate</title>')
    expect(svg).toContain('tokend &#60;1&#62;')
    expect(svg).not.toMatch(/NaN|Infinity|<script/)
  })

  it('tabulates contenders with medians and ranges', () => {
    const table = comparisonTable([
      { name: 'a', requestsPerS: [10, 30, 20], verifiesPerRequest: 16, cpuUsPerVerify: [5], bytesPerRequest: [] },
    ])
    expect(table.at(-1)).toBe('| a | 20 (10–30) | 320 | 5.0 | — |')
  })
})
