export interface Bucket {
  fromMs: number
  toMs: number
  count: number
}

const WIDTH = 800
const HEIGHT = 340
const MARGIN = { left: 70, right: 20, top: 40, bottom: 55 }
const BINS = 48

/** Latencies (ms) counted in log-spaced buckets between the fastest and the slowest. */
export function latencyBuckets(latencies: readonly number[]): Bucket[] {
  if (latencies.length === 0) return []
  let low = Number.POSITIVE_INFINITY
  let high = 0
  for (const value of latencies) {
    low = Math.min(low, value)
    high = Math.max(high, value)
  }
  low = Math.max(low, 0.001)
  if (high <= low) high = low * 2
  const ratio = Math.log(high / low)
  const buckets = Array.from({ length: BINS }, (_, i) => ({
    fromMs: low * Math.exp((ratio * i) / BINS),
    toMs: low * Math.exp((ratio * (i + 1)) / BINS),
    count: 0,
  }))
  for (const value of latencies) {
    const index = Math.floor((Math.log(Math.max(value, low) / low) / ratio) * BINS)
    ;(buckets[Math.min(BINS - 1, index)] as Bucket).count++
  }
  return buckets
}

/**
 * The buckets as an SVG bar chart on a logarithmic latency axis, with the given
 * percentiles marked. Self-contained: no fonts, scripts or links.
 */
export function histogramSvg(buckets: Bucket[], marks: Record<string, number>, title: string): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom
  const bottom = MARGIN.top + plotHeight
  const low = buckets[0]?.fromMs ?? 0.1
  const high = buckets.at(-1)?.toMs ?? 1
  const x = (ms: number) => MARGIN.left + (Math.log(ms / low) / Math.log(high / low)) * plotWidth
  const most = Math.max(1, ...buckets.map((bucket) => bucket.count))
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${xml(title)}</text>`,
  ]
  for (const bucket of buckets) {
    if (bucket.count === 0) continue
    const height = (bucket.count / most) * plotHeight
    const left = x(bucket.fromMs)
    parts.push(
      `<rect x="${n(left)}" y="${n(bottom - height)}" width="${n(Math.max(1, x(bucket.toMs) - left - 1))}" height="${n(height)}" fill="#4a7ebb"><title>${n(bucket.fromMs)}–${n(bucket.toMs)} ms: ${bucket.count}</title></rect>`,
    )
  }
  parts.push(
    `<line x1="${MARGIN.left}" y1="${bottom}" x2="${WIDTH - MARGIN.right}" y2="${bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${bottom}" stroke="black"/>`,
    `<text x="${MARGIN.left - 6}" y="${MARGIN.top + 4}" text-anchor="end">${most}</text>`,
    `<text x="${MARGIN.left - 6}" y="${bottom}" text-anchor="end">0</text>`,
    `<text x="16" y="${MARGIN.top + plotHeight / 2}" transform="rotate(-90 16 ${MARGIN.top + plotHeight / 2})" text-anchor="middle">responses</text>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 10}" text-anchor="middle">latency (ms, log scale)</text>`,
  )
  for (const tick of ticks(low, high)) {
    parts.push(
      `<line x1="${n(x(tick))}" y1="${bottom}" x2="${n(x(tick))}" y2="${bottom + 5}" stroke="black"/>`,
      `<text x="${n(x(tick))}" y="${bottom + 18}" text-anchor="middle">${tick}</text>`,
    )
  }
  Object.entries(marks).forEach(([name, ms], i) => {
    if (!(ms >= low && ms <= high)) return
    parts.push(
      `<line x1="${n(x(ms))}" y1="${MARGIN.top}" x2="${n(x(ms))}" y2="${bottom}" stroke="#c0392b" stroke-dasharray="4 3"/>`,
      // Labels near the right edge go left of their line.
      x(ms) > WIDTH - 130
        ? `<text x="${n(x(ms) - 3)}" y="${MARGIN.top + 12 + 14 * i}" text-anchor="end" fill="#c0392b">${xml(name)} ${n(ms)} ms</text>`
        : `<text x="${n(x(ms) + 3)}" y="${MARGIN.top + 12 + 14 * i}" fill="#c0392b">${xml(name)} ${n(ms)} ms</text>`,
    )
  })
  parts.push('</svg>', '')
  return parts.join('\n')
}

/** 1-2-5 steps between `low` and `high`. */
function ticks(low: number, high: number): number[] {
  const out: number[] = []
  for (let decade = 10 ** Math.floor(Math.log10(low)); decade <= high; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const value = Number((step * decade).toPrecision(3))
      if (value >= low && value <= high) out.push(value)
    }
  }
  return out
}

const n = (value: number) => Number(value.toFixed(value < 10 ? 3 : 1))
const xml = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)
