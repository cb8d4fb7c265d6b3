import { freshDatabase } from '@tokend/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './harness.ts'

describe('start-up', () => {
  const apps: TestApp[] = []
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined
  afterAll(async () => {
    for (const app of apps) await app.stop()
    await database?.drop()
  })

  it('migrates and bootstraps exactly once when replicas start together', async () => {
    database = await freshDatabase()
    apps.push(...(await Promise.all([1, 2, 3].map(() => startTestApp({}, database)))))
    const keys = apps.map((app) => app.bootstrapKey).filter(Boolean)
    expect(keys).toHaveLength(1)

    const db = apps[0]?.app.deps.db
    if (!db) throw new Error('no app')
    const operators = await db.selectFrom('accounts').select('id').where('operator', '=', true).execute()
    expect(operators).toHaveLength(1)
    const bootstraps = await db
      .selectFrom('audit_events')
      .select('id')
      .where('action', '=', 'account.bootstrap')
      .execute()
    expect(bootstraps).toHaveLength(1)
    const migrations = (await db
      .selectFrom('kysely_migration' as never)
      .selectAll()
      .execute()) as { name: string }[]
    expect(migrations.map((m) => m.name)).toContain('2026-11-23T0800_core')
    expect(new Set(migrations.map((m) => m.name)).size).toBe(migrations.length)
    // One signing key, created by whichever replica migrated.
    expect(await db.selectFrom('signing_keys').select('id').execute()).toHaveLength(1)

    // The one key works on every replica.
    for (const app of apps) {
      const reply = await app.operator.as(keys[0]).query('me')
      expect(reply.status).toBe(200)
    }
  })

  it('answers /healthz and /readyz without credentials', async () => {
    const app = apps[0] as TestApp
    expect(await fetch(`${app.url}/healthz`).then((r) => r.status)).toBe(200)
    const ready = await fetch(`${app.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ok', database: 'ok' })
  })
})
