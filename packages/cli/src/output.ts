/** Human output: aligned columns, ISO dates, nothing a terminal would interpret. */

/** A column-aligned table with a header row; an empty list says so instead. */
export function table(header: string[], rows: string[][], empty = '(none)'): string {
  if (rows.length === 0) return `${empty}\n`
  const all = [header, ...rows.map((row) => row.map(clean))]
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)))
  return all
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n')
}

/** `label  value` lines, labels aligned. */
export function details(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([label]) => label.length))
  return pairs
    .map(([label, value]) => `${label.padEnd(width)}  ${clean(value)}`.trimEnd())
    .join('\n')
    .concat('\n')
}

/** ISO-8601 to the second, in UTC; `none` for a missing date. */
export function date(iso: string | null | undefined, none = '-'): string {
  return iso ? iso.replace(/\.\d+Z$/, 'Z') : none
}

export function list(values: readonly string[]): string {
  return values.length > 0 ? values.join(',') : '-'
}

export function text(value: string | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : value
}

/** Names and details come from other people: control characters never reach the terminal. */
function clean(value: string): string {
  return value.replace(/\p{Cc}/gu, '?')
}
