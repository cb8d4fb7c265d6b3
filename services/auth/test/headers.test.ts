import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, startTestApp, type TestApp } from './harness.ts'

let t: TestApp

beforeAll(async () => {
  t = await startTestApp()
})

afterAll(() => t?.stop())

describe('answers that carry secrets', () => {
  it('are never stored by a cache, and are never sniffed as anything but JSON, on every transport', async () => {
    const issued = await t.operator.mutation('token.issue', { name: 'x', environment: 'test' })
    const rotated = await t.operator.mutation('token.rotate', { id: issued.body.result.data.id })
    const direct = await t.operator.mutation('direct.create', { resourceType: 'ai', resourceId: 'a1' })
    const boot = await t.operator.as(undefined).mutation('auth.boot', { directHash: direct.body.result.data.hash })
    const verify = await t.operator.mutation('token.verify', { token: issued.body.result.data.token })
    const rest = await t.operator.send<any>('/api/v1/tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'y', environment: 'test' }),
    })
    const denied = await t.operator.as(undefined).mutation('token.issue', { name: 'x', environment: 'test' })
    for (const reply of [issued, rotated, direct, boot, verify, rest, denied]) {
      expect(reply.headers.get('cache-control')).toBe('no-store')
      expect(reply.headers.get('x-content-type-options')).toBe('nosniff')
    }
    expect(issued.status).toBe(200)
    expect(boot.status).toBe(200)
    expect(denied.status).toBe(401)
  })
})

describe('the client address', () => {
  async function auditedAddress(app: TestApp, forwardedFor: string): Promise<string | null> {
    const key = await app.operator.send<any>('/trpc/token.issue', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ name: 'forwarded', environment: 'test' }),
    })
    const events = await app.operator.query('audit.list', { targetId: key.body.result.data.id })
    return events.body.result.data.items[0].address
  }

  it('is the socket’s by default: a forged X-Forwarded-For is not believed', async () => {
    expect(await auditedAddress(t, '203.0.113.9')).toMatch(/127\.0\.0\.1$/)
  })

  it('comes from X-Forwarded-For only behind a proxy named in TOKEND_TRUST_PROXY', async () => {
    const behind = await startTestApp({ TOKEND_TRUST_PROXY: 'loopback' })
    try {
      expect(await auditedAddress(behind, '203.0.113.9')).toBe('203.0.113.9')
    } finally {
      await behind.stop()
    }
  })

  it('is the same on the verify fast path: its audit and throttle address follow the same rule', async () => {
    // The fast path and tRPC build the request's context with one function (createContext).
    const key = await issue(t.operator)
    const reply = await fetch(`${t.url}/trpc/token.verify`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${t.bootstrapKey}`,
        'x-forwarded-for': '203.0.113.9',
        'x-request-id': 'req-fast-1',
      },
      body: JSON.stringify({ token: key.token }),
    })
    expect(reply.headers.get('x-request-id')).toBe('req-fast-1')
    expect(reply.headers.get('cache-control')).toBe('no-store')
  })
})
