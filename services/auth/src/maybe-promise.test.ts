import { describe, expect, it } from 'vitest'
import { andThen, isPromise } from './maybe-promise.ts'

describe('MaybePromise', () => {
  it('runs the next step at once for a value, and no promise is made', () => {
    let ran = false
    const result = andThen(2, (value) => {
      ran = true
      return value * 3
    })
    expect(ran).toBe(true)
    expect(result).toBe(6)
    expect(isPromise(result)).toBe(false)
  })

  it('waits for a promise, and passes its rejection on', async () => {
    const later = andThen(Promise.resolve(2), (value) => value * 3)
    expect(isPromise(later)).toBe(true)
    expect(await later).toBe(6)
    await expect(andThen(Promise.reject(new Error('no')), () => 1)).rejects.toThrow('no')
  })

  it('chains a value into a promise', async () => {
    expect(await andThen(1, async (value) => value + 1)).toBe(2)
  })
})
