import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, newAccount, newSession, startTestApp, type TestApp } from './harness.ts'

/**
 * The change stream (`token.changes`, SSE) that client caches and the console follow:
 * who may open it, what each subscriber hears, and that it ends with its credential.
 */
let t: TestApp

beforeAll(async () => {
  t = await startTestApp()
})

afterAll(() => t?.stop())

interface SseEvent {
  event: string
  data: any
}

/** An open change stream, read as its events arrive. */
class Stream {
  readonly events: SseEvent[] = []
  ended = false
  readonly #waiters = new Set<() => void>()
  readonly #abort = new AbortController()

  static async open(url: string, key: string): Promise<{ status: number; stream?: Stream; body?: any }> {
    const controller = new AbortController()
    const response = await fetch(`${url}/trpc/token.changes`, {
      headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
      signal: controller.signal,
    })
    if (response.headers.get('content-type')?.startsWith('text/event-stream') !== true) {
      return { status: response.status, body: await response.json() }
    }
    const stream = new Stream(controller)
    void stream.#read(response.body as ReadableStream<Uint8Array>)
    return { status: response.status, stream }
  }

  private constructor(abort: AbortController) {
    this.#abort = abort
  }

  async #read(body: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true })
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event !== 'ping') this.events.push({ event, data: data ? JSON.parse(data) : undefined })
          end = buffer.indexOf('\n\n')
        }
        this.#wake()
      }
    } catch {}
    this.ended = true
    this.#wake()
  }

  #wake() {
    for (const waiter of this.#waiters) waiter()
  }

  /** Waits until `done` holds, at most `ms`. */
  async until(done: () => boolean, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out; events: ${JSON.stringify(this.events)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.#waiters.add(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  data(): any[] {
    return this.events.filter((event) => event.event === 'message').map((event) => event.data)
  }

  error(): any {
    return this.events.find((event) => event.event === 'serialized-error')?.data
  }

  close() {
    this.#abort.abort()
  }
}

async function openOk(key: string): Promise<Stream> {
  const opened = await Stream.open(t.url, key)
  expect(opened.status).toBe(200)
  const stream = opened.stream as Stream
  await stream.until(() => stream.data().some((event) => event?.type === 'ready'))
  return stream
}

describe('who may follow the change stream', () => {
  it('refuses a missing or bad credential with 401 and a key without tokend:verify with 403, before streaming', async () => {
    const customer = await newAccount(t.operator, 'no verify')
    const none = await fetch(`${t.url}/trpc/token.changes`)
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(((await none.json()) as any).error.data.reason).toBe('invalid_token')
    const bad = await Stream.open(t.url, 'tk_live_nope')
    expect(bad.status).toBe(401)
    const noScope = await Stream.open(t.url, customer.adminKey.token)
    expect(noScope.status).toBe(403)
    expect(noScope.body.error.data.reason).toBe('forbidden')
    expect(noScope.body.error.data.httpStatus).toBe(403)
  })

  it('lets a session follow its own account (the console)', async () => {
    const customer = await newAccount(t.operator, 'console')
    const { token } = await newSession(customer.admin)
    const stream = await openOk(token)
    expect(stream.data()[0]).toEqual({ type: 'ready', scope: customer.accountId })
    stream.close()
  })
})

describe('what each subscriber hears', () => {
  it("tells a tenant's verify key its own account's changes only; the operator hears all", async () => {
    const a = await newAccount(t.operator, 'tenant a')
    const b = await newAccount(t.operator, 'tenant b')
    // Only a holder of tokend:verify may grant it: the operator issues the tenant's verify key.
    const watcherA = await issue(t.operator, {
      name: 'watcher',
      accountId: a.accountId,
      environment: 'live',
      scopes: ['tokend:verify'],
    })
    const tenant = await openOk(watcherA.token)
    const operator = await openOk(t.bootstrapKey)
    expect(tenant.data()[0]).toEqual({ type: 'ready', scope: a.accountId })
    expect(operator.data()[0]).toEqual({ type: 'ready', scope: 'all' })

    const keyA = await issue(a.admin, { environment: 'live' })
    const keyB = await issue(b.admin, { environment: 'live' })
    await b.admin.mutation('token.revoke', { id: keyB.id })
    await a.admin.mutation('token.revoke', { id: keyA.id })
    await t.operator.mutation('account.setStatus', { accountId: b.accountId, status: 'suspended' })

    await operator.until(() => operator.data().length >= 4)
    await tenant.until(() => tenant.data().length >= 2)
    // Give anything wrongly sent time to arrive before checking that nothing was.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(operator.data().slice(1)).toEqual([
      { type: 'key', digest: expect.any(String), accountId: b.accountId, tokenId: keyB.id },
      { type: 'key', digest: expect.any(String), accountId: a.accountId, tokenId: keyA.id },
      { type: 'account', accountId: b.accountId },
    ])
    expect(tenant.data().slice(1)).toEqual([
      { type: 'key', digest: expect.any(String), accountId: a.accountId, tokenId: keyA.id },
    ])
    expect(JSON.stringify(tenant.events)).not.toContain(b.accountId)
    tenant.close()
    operator.close()
  })
})

describe('a stream ends with its credential', () => {
  it.each([
    ['revoked', async (admin: TestApp['operator'], id: string) => admin.mutation('token.revoke', { id })],
    [
      'disabled',
      async (admin: TestApp['operator'], id: string) => admin.mutation('token.setDisabled', { id, disabled: true }),
    ],
    [
      'expired by rotation',
      async (admin: TestApp['operator'], id: string) => admin.mutation('token.rotate', { id, oldExpiresIn: 0 }),
    ],
  ])('when its key is %s', async (_name, change) => {
    const key = await issue(t.operator, { environment: 'live', scopes: ['tokend:verify'] })
    const stream = await openOk(key.token)
    expect((await change(t.operator, key.id)).status).toBe(200)
    await stream.until(() => stream.ended)
    expect(stream.error()?.data.reason).toBe('invalid_token')
    // And it cannot come back.
    expect((await Stream.open(t.url, key.token)).status).toBe(401)
  })

  it("when its key's account is suspended", async () => {
    const customer = await newAccount(t.operator, 'suspended later')
    const key = await issue(t.operator, {
      accountId: customer.accountId,
      environment: 'live',
      scopes: ['tokend:verify'],
    })
    const stream = await openOk(key.token)
    await t.operator.mutation('account.setStatus', { accountId: customer.accountId, status: 'suspended' })
    await stream.until(() => stream.ended)
    expect(stream.error()?.data.reason).toBe('invalid_token')
  })

  it('when its session signs out', async () => {
    const customer = await newAccount(t.operator, 'signs out')
    const { session, token } = await newSession(customer.admin)
    const stream = await openOk(token)
    expect((await session.mutation('auth.logout')).status).toBe(200)
    await stream.until(() => stream.ended)
    expect(stream.error()?.data.reason).toBe('invalid_token')
  })

  it('but not when another key of its account changes', async () => {
    const key = await issue(t.operator, { environment: 'live', scopes: ['tokend:verify'] })
    const other = await issue(t.operator)
    const stream = await openOk(key.token)
    await t.operator.mutation('token.revoke', { id: other.id })
    await stream.until(() => stream.data().some((event) => event.tokenId === other.id))
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(stream.ended).toBe(false)
    stream.close()
  })
})
