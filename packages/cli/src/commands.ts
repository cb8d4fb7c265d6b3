import { type Command, InvalidArgumentError } from 'commander'

/** Small helpers the command files share. */

/** Help text listing examples, shown after the options by `--help`. */
export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => (line.startsWith('#') ? `  ${line}` : `  $ ${line}`)).join('\n')}\n`
}

/** For repeatable options: `--scope a --scope b` gives `['a', 'b']`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

export function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number')
  return Number(value)
}

/** A number of days, `30` or `30d` (1 to 36500), for the forgotten-key filters. */
export function days(value: string): number {
  const match = /^(\d+)d?$/.exec(value.trim())
  const count = Number(match?.[1])
  if (!match || count < 1 || count > 36_500) throw new InvalidArgumentError('expected days such as 30d (1d to 36500d)')
  return count
}

/** An http(s) URL without a user name or password (those would end up in error messages). */
export function baseUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError('expected a URL such as http://localhost:3000')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected http or https')
  if (url.username || url.password) throw new InvalidArgumentError('give the key with TOKEND_KEY, not in the URL')
  return value
}

/** `--limit`, `--cursor` and `--all`, shared by every list. */
export function withPaging(command: Command): Command {
  return command
    .option('--limit <n>', 'items per page (1–100, default 50)', wholeNumber)
    .option('--cursor <cursor>', 'start after this cursor (a page prints the next one)')
    .option('--all', 'follow the cursors and print every page')
}

export interface PagingOptions {
  limit?: number
  cursor?: string
  all?: boolean
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

/** One page, or with `all` every page from `cursor` on, as one list (`nextCursor: null`). */
export async function pages<T>(
  fetch: (cursor: string | undefined) => Promise<Page<T>>,
  cursor: string | undefined,
  all: boolean | undefined,
): Promise<Page<T>> {
  let page = await fetch(cursor)
  if (!all) return page
  const items = [...page.items]
  while (page.nextCursor) {
    page = await fetch(page.nextCursor)
    items.push(...page.items)
  }
  return { items, nextCursor: null }
}

/** `7d`, `24h`, `30m` before now, as ISO; anything else goes to tokend as given (it checks ISO dates). */
export function pastTime(value: string): string {
  const match = /^(\d+)([mhd])$/.exec(value)
  if (!match) return value
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd']
  return new Date(Date.now() - Number(match[1]) * unit).toISOString()
}
