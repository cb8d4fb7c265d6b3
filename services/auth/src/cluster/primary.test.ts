import { describe, expect, it } from 'vitest'
import { recentCrashes, restartDelay } from './primary.ts'

describe('replacing dead workers', () => {
  it('waits 100 ms after a first death, doubling with each further death in a minute, at most 30 s', () => {
    expect([1, 2, 3, 4, 5].map(restartDelay)).toEqual([100, 200, 400, 800, 1_600])
    expect(restartDelay(9)).toBe(25_600)
    expect(restartDelay(10)).toBe(30_000)
    expect(restartDelay(1_000)).toBe(30_000)
  })

  it('forgets deaths older than a minute', () => {
    const now = 1_000_000
    expect(recentCrashes([now - 120_000, now - 60_001, now - 60_000, now - 10], now)).toEqual([now - 60_000, now - 10])
    expect(restartDelay(recentCrashes([now - 120_000, now - 90_000], now).length + 1)).toBe(100)
  })
})
