import { generateKey } from '@tokend/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './harness.ts'

/**
 * An error nobody expected — a bug — on any path: the request is answered 500 with
 * its request id, the error is logged with that id and counted in /metrics, and the
 * service answers the next request. (The bug is planted here by breaking a part.)
 */
let t: TestApp

beforeAll(async () => {
  t = await startTestApp()
})

afterAll(() => t?.stop())

async function unexpectedCount(): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith('tokend_unexpected_errors_total{where="request"}'))
  return line ? Number(line.split(' ').at(-1)) : 0
}

function breakKeyLoading(): () => void {
  const keys = t.app.deps.keys
  const load = keys.load
  keys.load = () => Promise.reject(new TypeError('a planted bug'))
  return () => {
    keys.load = load
  }
}

describe('an unexpected error', () => {
  it.each([
    ['tRPC', '/trpc/token.verify,token.issue?batch=1', (token: string) => ({ 0: { token }, 1: { name: 'x' } })],
    ['the verify fast path', '/trpc/token.verify', (token: string) => ({ token })],
    ['REST', '/api/v1/tokens/verify', (token: string) => ({ token })],
  ])('on %s is a logged, counted 500 with the request id', async (_name, path, body) => {
    const before = await unexpectedCount()
    // The caller's own key is cached first: only the verified key reaches the broken part.
    expect((await t.operator.query('me')).status).toBe(200)
    const restore = breakKeyLoading()
    try {
      const reply = await fetch(`${t.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${t.bootstrapKey}`,
          'x-request-id': `bug-${path.length}`,
        },
        // An unknown key misses the cache, so the broken part is reached.
        body: JSON.stringify(body(generateKey('tk', 'test'))),
      })
      const text = await reply.text()
      expect(reply.status).toBe(path.includes('token.issue') ? 207 : 500)
      expect(reply.headers.get('x-request-id')).toBe(`bug-${path.length}`)
      // Over REST an RFC 9457 problem; tRPC keeps its own shape.
      if (path.startsWith('/api/v1/')) {
        expect(reply.headers.get('content-type')).toBe('application/problem+json')
        expect(JSON.parse(text)).toMatchObject({ status: 500, reason: 'internal', requestId: `bug-${path.length}` })
      }
      expect(text).toContain('internal')
      expect(text).not.toContain('planted')
      expect(text).not.toMatch(/at \w+ \(|node_modules/)
    } finally {
      restore()
    }
    expect(await unexpectedCount()).toBe(before + 1)
    expect(t.logs.join('')).toContain(`bug-${path.length}`)
    expect(t.logs.join('')).toContain('a planted bug')
    expect((await t.operator.query('me')).status).toBe(200)
  })

  it('outside the API as well', async () => {
    const registry = t.app.deps.metrics.registry
    const metrics = registry.metrics
    registry.metrics = () => Promise.reject(new TypeError('a planted bug in metrics'))
    try {
      const reply = await fetch(`${t.url}/metrics`, { headers: { 'x-request-id': 'bug-metrics' } })
      expect(reply.status).toBe(500)
      expect(await reply.json()).toEqual({
        error: { code: 'internal', message: 'internal error', requestId: 'bug-metrics' },
      })
    } finally {
      registry.metrics = metrics
    }
    expect(t.logs.join('')).toContain('a planted bug in metrics')
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
  })
})
