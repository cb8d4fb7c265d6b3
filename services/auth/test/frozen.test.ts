import { connect, createServer, type Server, type Socket } from 'node:net'
import { freshDatabase } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, startTestApp, type TestApp } from './harness.ts'

/**
 * A database that stops answering without closing anything (a frozen VM, a network
 * partition): every answer that needs it must fail closed within about a second —
 * the bounds in db/database.ts — not when TCP gives up, and tokend must recover by
 * itself once it answers again.
 */

/** A TCP proxy in front of Postgres that can stop passing bytes either way, connections left open. */
class FreezableProxy {
  readonly #sockets = new Set<Socket>()
  /** Bytes held while frozen, delivered on thaw. */
  #held: Array<() => void> = []
  #frozen = false
  readonly server: Server = createServer((client) => {
    const upstream = connect(this.target.port, this.target.host)
    this.#forward(client, upstream)
    this.#forward(upstream, client)
  })

  constructor(readonly target: { host: string; port: number }) {}

  #forward(from: Socket, to: Socket) {
    this.#sockets.add(from)
    from.on('error', () => {})
    from.on('close', () => {
      this.#sockets.delete(from)
      to.destroy()
    })
    from.on('data', (chunk) => {
      const deliver = () => to.write(chunk)
      if (this.#frozen) this.#held.push(deliver)
      else deliver()
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return (this.server.address() as { port: number }).port
  }

  freeze() {
    this.#frozen = true
  }

  thaw() {
    this.#frozen = false
    for (const deliver of this.#held.splice(0)) deliver()
  }

  close() {
    for (const socket of this.#sockets) socket.destroy()
    this.server.close()
  }
}

let t: TestApp
let proxy: FreezableProxy
let database: Awaited<ReturnType<typeof freshDatabase>>

beforeAll(async () => {
  database = await freshDatabase()
  const url = new URL(database.url)
  proxy = new FreezableProxy({ host: url.hostname, port: Number(url.port || 5432) })
  url.port = String(await proxy.listen())
  t = await startTestApp({}, { url: url.toString() })
})

afterAll(async () => {
  proxy?.thaw()
  await t?.stop()
  proxy?.close()
  await database?.drop()
})

/** The answer's status, and how long it took. */
async function timed(run: () => Promise<{ status: number }>): Promise<{ status: number; ms: number }> {
  const started = performance.now()
  const { status } = await run()
  return { status, ms: performance.now() - started }
}

// A bound on correctness, not a performance figure: before the timeouts these took 5–10 s.
const FAIL_CLOSED_WITHIN_MS = 4_000

describe('a frozen database', () => {
  it('fails closed within the bound on every path, then recovers by itself', async () => {
    const key = await issue(t.operator)
    expect((await t.operator.mutation('token.verify', { token: key.token })).body.result.data.valid).toBe(true)

    proxy.freeze()
    const unknown = await timed(() => t.operator.mutation('token.verify', { token: `${key.token.slice(0, 9)}x` }))
    // Until the change channel's heartbeat notices, a cached caller still verifies cached keys; a miss
    // needs the database and fails closed. Either way, never a late or a valid answer for an unknown key.
    expect(unknown.ms).toBeLessThan(FAIL_CLOSED_WITHIN_MS)
    expect([200, 503]).toContain(unknown.status)

    // Once the heartbeat has failed (within heartbeat + timeout, 3 s), nothing is answered from memory:
    // verify, management and readiness say 503.
    await new Promise((resolve) => setTimeout(resolve, 3_500))
    const verify = await timed(() => t.operator.mutation('token.verify', { token: key.token }))
    const list = await timed(() => t.operator.query('token.list'))
    const ready = await timed(() => fetch(`${t.url}/readyz`))
    for (const answer of [verify, list, ready]) {
      expect(answer.status).toBe(503)
      expect(answer.ms).toBeLessThan(FAIL_CLOSED_WITHIN_MS)
    }
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)

    proxy.thaw()
    const deadline = Date.now() + 20_000
    let last = 0
    while (Date.now() < deadline) {
      const reply = await t.operator.mutation('token.verify', { token: key.token })
      last = reply.status
      if (last === 200 && (await fetch(`${t.url}/readyz`)).status === 200) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    expect(last).toBe(200)
    expect((await t.operator.query('token.list')).status).toBe(200)
  }, 60_000)
})
