import { median } from './stats.ts'

export interface RateLine {
  name: string
  /** At each rate (requests/s), the p99 (ms) of every repetition. */
  points: { rate: number; values: number[] }[]
}

const WIDTH = 800
const HEIGHT = 380
const MARGIN = { left: 70, right: 30, top: 40, bottom: 75 }
const COLOURS = ['#c0392b', '#4a7ebb', '#27ae60', '#8e44ad']

/**
 * P11's chart: p99 (ms, log scale) against the request rate, one line per server
 * through the medians, with a bar from the lowest to the highest repetition at each
 * rate so that the spread shows. Self-contained SVG: no fonts, scripts or links.
 */
export function p99Chart(lines: RateLine[], title: string): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom
  const bottom = MARGIN.top + plotHeight
  const values = lines.flatMap((line) => line.points.flatMap((point) => point.values)).filter((v) => v > 0)
  const rates = [...new Set(lines.flatMap((line) => line.points.map((point) => point.rate)))].sort((a, b) => a - b)
  const low = 10 ** Math.floor(Math.log10(Math.min(...values, 1)))
  const high = 10 ** Math.ceil(Math.log10(Math.max(...values, 1.0001)))
  const maxRate = Math.max(...rates, 1)
  const x = (rate: number) => MARGIN.left + (rate / maxRate) * plotWidth
  const y = (ms: number) => bottom - (Math.log(Math.max(ms, low) / low) / Math.log(high / low)) * plotHeight
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${xml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${xml(title)}</text>`,
    `<line x1="${MARGIN.left}" y1="${bottom}" x2="${WIDTH - MARGIN.right}" y2="${bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${bottom}" stroke="black"/>`,
    `<text x="16" y="${MARGIN.top + plotHeight / 2}" transform="rotate(-90 16 ${MARGIN.top + plotHeight / 2})" text-anchor="middle">p99 (ms, log scale)</text>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${bottom + 36}" text-anchor="middle">requests/s (open loop)</text>`,
  ]
  for (let decade = low; decade <= high; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const ms = Number((step * decade).toPrecision(3))
      if (ms > high) continue
      parts.push(
        `<line x1="${MARGIN.left}" y1="${n(y(ms))}" x2="${WIDTH - MARGIN.right}" y2="${n(y(ms))}" stroke="#ddd"/>`,
        `<text x="${MARGIN.left - 6}" y="${n(y(ms) + 4)}" text-anchor="end">${ms}</text>`,
      )
    }
  }
  for (const rate of rates) {
    parts.push(
      `<line x1="${n(x(rate))}" y1="${bottom}" x2="${n(x(rate))}" y2="${bottom + 5}" stroke="black"/>`,
      `<text x="${n(x(rate))}" y="${bottom + 18}" text-anchor="middle">${rate}</text>`,
    )
  }
  lines.forEach((line, i) => {
    const colour = COLOURS[i % COLOURS.length]
    const shown = line.points.filter((point) => point.values.length > 0)
    const path = shown.map((point) => `${n(x(point.rate))},${n(y(median(point.values)))}`).join(' ')
    parts.push(`<polyline points="${path}" fill="none" stroke="${colour}" stroke-width="2"/>`)
    for (const point of shown) {
      const mid = median(point.values)
      const label = `${line.name} at ${point.rate}/s: p99 ${n(mid)} ms (${point.values.map(n).join(', ')})`
      parts.push(
        `<line x1="${n(x(point.rate))}" y1="${n(y(Math.min(...point.values)))}" x2="${n(x(point.rate))}" y2="${n(y(Math.max(...point.values)))}" stroke="${colour}" stroke-width="6" stroke-opacity="0.35"/>`,
        `<circle cx="${n(x(point.rate))}" cy="${n(y(mid))}" r="4" fill="${colour}"><title>${xml(label)}</title></circle>`,
      )
    }
    const legendX = MARGIN.left + 10 + i * 220
    parts.push(
      `<line x1="${legendX}" y1="${HEIGHT - 14}" x2="${legendX + 24}" y2="${HEIGHT - 14}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${legendX + 30}" y="${HEIGHT - 10}">${xml(line.name)}</text>`,
    )
  })
  parts.push('</svg>', '')
  return parts.join('\n')
}

const n = (value: number) => Number(value.toFixed(value < 10 ? 3 : 1))
const xml = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)
