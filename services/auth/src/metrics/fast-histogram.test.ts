import { Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { FastHistogram } from './fast-histogram.ts'

describe('FastHistogram', () => {
  it("writes the exposition prom-client's Histogram writes for the same observations", async () => {
    const buckets = [0.00005, 0.0001, 0.001, 0.5]
    const ours = new Registry()
    const theirs = new Registry()
    const fast = new FastHistogram('d_seconds', 'how long', buckets, ours)
    const stock = new Histogram({ name: 'd_seconds', help: 'how long', buckets, registers: [theirs] })
    for (const value of [0, 0.00005, 0.00007, 0.0001, 0.002, 0.5, 0.7, 3]) {
      fast.observe(value)
      stock.observe(value)
    }
    expect(await ours.metrics()).toBe(await theirs.metrics())
    fast.reset()
    stock.reset()
    expect(await ours.metrics()).toBe(await theirs.metrics())
  })
})
