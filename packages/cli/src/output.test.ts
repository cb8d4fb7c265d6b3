import { describe, expect, it } from 'vitest'
import { baseUrl, pastTime } from './commands.ts'
import { date, details, table } from './output.ts'

describe('human output', () => {
  it('aligns columns and keeps control characters from the terminal', () => {
    const out = table(
      ['ID', 'NAME', 'STATUS'],
      [
        ['tok_1', 'a', 'active'],
        ['tok_22', 'red \u001b[31malert', 'revoked'],
      ],
    )
    expect(out).toBe(
      ['ID      NAME            STATUS', 'tok_1   a               active', 'tok_22  red ?[31malert  revoked', ''].join(
        '\n',
      ),
    )
    expect(table(['ID'], [], '(no keys)')).toBe('(no keys)\n')
    expect(
      details([
        ['id', 'tok_1'],
        ['last used', 'x\ny'],
      ]),
    ).toBe('id         tok_1\nlast used  x?y\n')
  })

  it('prints dates as ISO-8601 to the second', () => {
    expect(date('2026-05-01T10:00:00.123Z')).toBe('2026-05-01T10:00:00Z')
    expect(date(null, 'never')).toBe('never')
  })
})

describe('option values', () => {
  it('takes --since as a date or as a time ago', () => {
    expect(pastTime('2026-05-01T10:00:00Z')).toBe('2026-05-01T10:00:00Z')
    // Read the clock after pastTime did, or a millisecond between the two fails this.
    const twoHoursAgo = Date.parse(pastTime('2h'))
    expect(Date.now() - twoHoursAgo).toBeGreaterThanOrEqual(2 * 3_600_000)
    expect(Date.now() - Date.parse(pastTime('7d'))).toBeLessThan(7 * 86_400_000 + 60_000)
  })

  it('refuses a URL that is not http(s) or that carries credentials', () => {
    expect(baseUrl('https://tokend.internal:8443')).toBe('https://tokend.internal:8443')
    for (const bad of ['localhost:3000', 'ftp://x', 'http://user:secret@x', 'nope']) {
      expect(() => baseUrl(bad)).toThrow()
    }
  })
})
