import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import pino from 'pino'
import { afterEach, expect, it } from 'vitest'
import { ChangeListener } from './change-listener.ts'

const held: Socket[] = []
const server = createServer((socket) => held.push(socket))

afterEach(() => {
  for (const socket of held.splice(0)) socket.destroy()
  server.close()
})

it('stops while it is still connecting to a database that does not answer', async () => {
  // Accepts the connection and never says a word: pg is left waiting for the startup reply.
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const listener = new ChangeListener({
    databaseUrl: `postgres://nobody@127.0.0.1:${port}/none`,
    logger: pino({ level: 'silent' }),
    heartbeatMs: 1_000,
    heartbeatTimeoutMs: 60_000,
  })
  void listener.start()
  while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  await listener.stop()
  expect(listener.state).toBe('lost')
})
