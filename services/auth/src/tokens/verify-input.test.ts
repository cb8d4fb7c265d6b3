import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { verifyInput } from './verify.ts'
import { parseVerifyInput } from './verify-input.ts'

/** The shortcut must accept exactly what the schema accepts, and give back the same input. */
const bySchema = (raw: unknown) => {
  const parsed = verifyInput.safeParse(raw)
  return parsed.success ? parsed.data : null
}

describe('parseVerifyInput', () => {
  it('agrees with verifyInput on anything JSON can carry', () => {
    const token = fc.oneof(fc.string({ maxLength: 5000 }), fc.constant('x'.repeat(4096)), fc.constant('x'.repeat(4097)))
    const inputs = fc.oneof(
      fc.jsonValue(),
      fc.record({ token }),
      fc.record({ token: fc.jsonValue() }),
      fc.record({ token, extra: fc.jsonValue() }, { requiredKeys: ['token'] }),
      fc.record({ token, require: fc.record({ scopes: fc.array(fc.string()) }) }, { requiredKeys: ['token'] }),
      fc.record({ token, ratelimit: fc.jsonValue() }, { requiredKeys: [] }),
      fc.record(
        {
          token,
          clientIp: fc.oneof(
            fc.ipV4(),
            fc.ipV6(),
            fc.string({ maxLength: 70 }),
            fc.jsonValue(),
            fc.constant('fe80::1%eth0'),
          ),
        },
        { requiredKeys: ['token'] },
      ),
    )
    fc.assert(
      fc.property(inputs, (raw) => {
        const text = JSON.stringify(raw) ?? 'null'
        expect(parseVerifyInput(JSON.parse(text))).toEqual(bySchema(JSON.parse(text)))
      }),
      { numRuns: 2000 },
    )
  })

  it('leaves odd objects to the schema', () => {
    expect(parseVerifyInput(JSON.parse('{"__proto__":{"token":"a"}}'))).toBeNull()
    const inherited = Object.create({ token: 'inherited' })
    expect(parseVerifyInput(inherited)).toEqual(bySchema(inherited))
    expect(parseVerifyInput(inherited)).not.toBe(inherited)
    expect(parseVerifyInput(JSON.parse('{"token":"a","token2":1}'))).toBeNull()
    const plain = JSON.parse('{"token":"tk_live_x"}')
    expect(parseVerifyInput(plain)).toBe(plain)
  })
})
