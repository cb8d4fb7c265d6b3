import { readFileSync } from 'node:fs'
import { TRPCError } from '@trpc/server'
import { getHTTPStatusCodeFromError } from '@trpc/server/http'
import { describe, expect, it } from 'vitest'
import { ERROR_REASONS, type Reason } from './errors.ts'
import { openApiDocument } from './http/rest.ts'
import { CODE_OF } from './trpc.ts'

const README = new URL('../../../README.md', import.meta.url)

/** The README's error table, as [reason, status, meaning] rows. */
function readmeReasons(): string[][] {
  const text = readFileSync(README, 'utf8')
  const table = text.split('<!-- reasons:start -->')[1]?.split('<!-- reasons:end -->')[0] ?? ''
  return table
    .trim()
    .split('\n')
    .slice(2)
    .map((row) =>
      row
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
}

describe('error reasons', () => {
  it('are documented in one README table, exactly as errors.ts lists them', () => {
    const documented = Object.entries(ERROR_REASONS).map(([reason, { status, meaning }]) => [
      `\`${reason}\``,
      String(status),
      meaning,
    ])
    expect(readmeReasons()).toEqual(documented)
  })

  it('answer with the documented HTTP status', () => {
    for (const [reason, code] of Object.entries(CODE_OF)) {
      expect([reason, getHTTPStatusCodeFromError(new TRPCError({ code }))]).toEqual([
        reason,
        ERROR_REASONS[reason as Reason].status,
      ])
    }
    expect(Object.keys(CODE_OF).sort()).toEqual(
      Object.keys(ERROR_REASONS)
        .filter((r) => r !== 'internal')
        .sort(),
    )
  })

  it('are listed by the OpenAPI problem schema', () => {
    const schema = openApiDocument().components?.schemas?.Problem as any
    expect(schema.properties.reason.enum).toEqual(Object.keys(ERROR_REASONS))
    for (const reason of Object.keys(ERROR_REASONS)) expect(schema.properties.reason.description).toContain(reason)
  })

  it('each have a problem title (RFC 9457), distinct per reason', () => {
    const titles = Object.values(ERROR_REASONS).map(({ title }) => title)
    expect(titles.every((title) => title.length > 0)).toBe(true)
    expect(new Set(titles).size).toBe(titles.length)
  })
})
