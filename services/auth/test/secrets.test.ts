import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { issue, newSession, PASSWORD, startTestApp, type TestApp } from './harness.ts'

let t: TestApp

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp()
})

async function everythingStored(): Promise<string> {
  const { rows } = await sql<{ dump: string }>`
    select (select coalesce(json_agg(a), '[]') from accounts a)::text
      || (select coalesce(json_agg(k), '[]') from access_keys k)::text
      || (select coalesce(json_agg(e), '[]') from audit_events e)::text
      || (select coalesce(json_agg(u), '[]') from users u)::text
      || (select coalesce(json_agg(s), '[]') from sessions s)::text
      || (select coalesce(json_agg(d), '[]') from directs d)::text as dump
  `.execute(t.app.deps.db)
  return rows[0]?.dump ?? ''
}

describe('secrets', () => {
  it('returns a plaintext key only from issue and rotate', async () => {
    const issued = await issue(t.operator, { name: 'secret-holder' })
    const rotated = (await t.operator.mutation('token.rotate', { id: issued.id })).body.result.data
    const verified = await t.operator.mutation('token.verify', { token: issued.token })
    expect(verified.body.result.data.valid).toBe(true)
    await t.operator.mutation('token.revoke', { id: issued.id })

    const digest = (
      await t.app.deps.db
        .selectFrom('access_keys')
        .select('digest')
        .where('id', '=', issued.id)
        .executeTakeFirstOrThrow()
    ).digest
    const reads = [
      await t.operator.query('token.list', { status: 'all', limit: 100 }),
      await t.operator.query('token.get', { id: issued.id }),
      await t.operator.query('token.get', { id: rotated.id }),
      await t.operator.query('me'),
      await t.operator.query('account.list'),
    ]
    for (const reply of reads) {
      const text = JSON.stringify(reply.body)
      for (const secret of [issued.token, rotated.token, t.bootstrapKey, digest]) {
        expect(text).not.toContain(secret)
        expect(text).not.toContain(secret.slice(12)) // not even the secret part alone
      }
    }

    const stored = await everythingStored()
    const logs = t.logs.join('')
    expect(logs.length).toBeGreaterThan(0)
    for (const secret of [issued.token, rotated.token, t.bootstrapKey]) {
      expect(stored).not.toContain(secret)
      expect(stored).not.toContain(secret.slice(12))
      expect(logs).not.toContain(secret.slice(12))
    }
  })

  it('logs requests with their request id and without credentials or query strings', async () => {
    const key = await issue(t.operator)
    await t.operator.send(`/trpc/token.get?input=${encodeURIComponent(JSON.stringify({ id: key.id }))}`, {
      method: 'GET',
      headers: { 'x-request-id': 'req-test-123' },
    })
    const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.req?.id === 'req-test-123')
    expect(line).toMatchObject({ req: { method: 'GET', path: '/trpc/token.get' }, res: { statusCode: 200 } })
    expect(JSON.stringify(line)).not.toContain(key.id)
    expect(t.logs.join('')).not.toContain(t.bootstrapKey.slice(12))
  })

  it('records an audit event for every change', async () => {
    const key = await issue(t.operator)
    await t.operator.mutation('token.setDisabled', { id: key.id, disabled: true })
    await t.operator.mutation('token.setDisabled', { id: key.id, disabled: true }) // no change, no event
    await t.operator.mutation('token.setDisabled', { id: key.id, disabled: false })
    const rotated = (await t.operator.mutation('token.rotate', { id: key.id })).body.result.data
    await t.operator.mutation('token.revoke', { id: key.id })
    await t.operator.mutation('token.revoke', { id: key.id }) // repeat, no event
    const events = await t.app.deps.db
      .selectFrom('audit_events')
      .selectAll()
      .where('target_id', 'in', [key.id, rotated.id])
      .orderBy('id')
      .execute()
    expect(events.map((event) => event.action)).toEqual([
      'token.issue',
      'token.disable',
      'token.enable',
      'token.rotate',
      'token.revoke',
    ])
    const me = (await t.operator.query('me')).body.result.data
    for (const event of events) {
      expect(event).toMatchObject({ actor_type: 'access_key', actor_id: me.tokenId, account_id: me.accountId })
      expect(event.address).toBeTruthy()
      expect(event.request_id).toBeTruthy()
    }
  })

  it('never stores or logs a password, a session token or a direct hash', async () => {
    const person = await newSession(t.operator, { role: 'admin' })
    await person.session.query('me')
    const direct = (await t.operator.mutation('direct.create', { resourceType: 'ai', resourceId: 'r1' })).body.result
      .data
    const booted = (await t.operator.as(undefined).mutation('auth.boot', { directHash: direct.hash })).body.result.data
    await t.operator.mutation('token.verify', { token: booted.token })
    await t.operator
      .as(undefined)
      .mutation('auth.login', { username: person.user.username, password: 'a wrong one 123' })
    await person.session.mutation('auth.logout')

    const stored = await everythingStored()
    const logs = t.logs.join('')
    const signature = (jwt: string) => jwt.split('.')[2] as string
    for (const secret of [PASSWORD, 'a wrong one 123', signature(person.token), signature(booted.token), direct.hash]) {
      expect(stored).not.toContain(secret)
      expect(logs).not.toContain(secret)
    }
    const listed = JSON.stringify((await t.operator.query('direct.list', {})).body)
    expect(listed).not.toContain(direct.hash)
  })
})
