import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Caller, issue, newAccount, startTestApp, type TestApp } from './harness.ts'

let t: TestApp
let customer: Awaited<ReturnType<typeof newAccount>>
let other: Awaited<ReturnType<typeof newAccount>>

afterAll(() => t?.stop())

beforeAll(async () => {
  t = await startTestApp()
  customer = await newAccount(t.operator, 'audited')
  other = await newAccount(t.operator, 'elsewhere')
})

const list = async (caller: Caller, input: Record<string, unknown> = {}) => {
  const reply = await caller.query('audit.list', input)
  expect(reply.status).toBe(200)
  return reply.body.result.data as { items: any[]; nextCursor: string | null }
}

describe('audit.list', () => {
  it('shows an admin its own account only, newest first, with who, what, where', async () => {
    const key = await issue(customer.admin, { name: 'audited key' })
    await customer.admin.mutation('token.revoke', { id: key.id })
    await issue(other.admin, { name: 'not yours' })
    const { items } = await list(customer.admin)
    expect(items.every((item) => item.accountId === customer.accountId)).toBe(true)
    expect(items.slice(0, 2).map((item) => [item.action, item.targetId])).toEqual([
      ['token.revoke', key.id],
      ['token.issue', key.id],
    ])
    expect(items[0]).toMatchObject({
      actorType: 'access_key',
      actorId: customer.adminKey.id,
      targetType: 'access_key',
      address: expect.any(String),
      requestId: expect.any(String),
      createdAt: expect.any(String),
    })
    const denied = await customer.admin.query('audit.list', { accountId: other.accountId })
    expect(denied.status).toBe(403)
  })

  it('filters by actor, target, action and time range', async () => {
    const key = await issue(customer.admin)
    await customer.admin.mutation('token.setDisabled', { id: key.id, disabled: true })
    expect((await list(customer.admin, { targetId: key.id })).items.map((i) => i.action)).toEqual([
      'token.disable',
      'token.issue',
    ])
    expect(
      (await list(customer.admin, { action: 'token.disable' })).items.every((i) => i.action === 'token.disable'),
    ).toBe(true)
    expect((await list(customer.admin, { actorId: customer.adminKey.id })).items.length).toBeGreaterThan(0)
    expect((await list(customer.admin, { actorId: 'tok_nobody' })).items).toEqual([])
    const future = new Date(Date.now() + 60_000).toISOString()
    expect((await list(customer.admin, { since: future })).items).toEqual([])
    expect((await list(customer.admin, { until: future, targetId: key.id })).items).toHaveLength(2)
  })

  it('pages with a cursor', async () => {
    for (let i = 0; i < 5; i++) await issue(customer.admin, { name: `page ${i}` })
    const all = (await list(customer.admin, { limit: 100 })).items.map((i) => i.id)
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const page = await list(customer.admin, { limit: 3, cursor })
      seen.push(...page.items.map((i) => i.id))
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    expect(seen).toEqual(all)
  })

  it('shows the operator every account, or one', async () => {
    const everything = (await list(t.operator, { limit: 100 })).items
    expect(new Set(everything.map((i) => i.accountId)).size).toBeGreaterThanOrEqual(3)
    const one = (await list(t.operator, { accountId: other.accountId })).items
    expect(one.length).toBeGreaterThan(0)
    expect(one.every((i) => i.accountId === other.accountId)).toBe(true)
  })

  it('is refused to managers', async () => {
    const manager = t.operator.as((await issue(customer.admin, { role: 'manager' })).token)
    expect((await manager.query('audit.list')).status).toBe(403)
  })

  it('has no event for a change that was rolled back, nor the change itself', async () => {
    // Make the audit insert fail for one key name: the key insert must roll back with it.
    const db = t.app.deps.db
    await sql`
      create function refuse_audit() returns trigger language plpgsql as $$
      begin
        if new.data->>'name' = 'rolled back' then raise exception 'audit refused'; end if;
        return new;
      end $$;
      create trigger refuse_audit before insert on audit_events for each row execute function refuse_audit();
    `.execute(db)
    try {
      const reply = await customer.admin.mutation('token.issue', { name: 'rolled back', environment: 'test' })
      expect(reply.status).toBe(500)
      expect(reply.body.error.message).toBe('internal error')
      expect(JSON.stringify(reply.body)).not.toContain('audit refused')
    } finally {
      await sql`drop trigger refuse_audit on audit_events; drop function refuse_audit();`.execute(db)
    }
    const keys = await db.selectFrom('access_keys').select('id').where('name', '=', 'rolled back').execute()
    expect(keys).toEqual([])
    const events = await db
      .selectFrom('audit_events')
      .select('id')
      .where(sql`data->>'name'`, '=', 'rolled back')
      .execute()
    expect(events).toEqual([])
  })
})
