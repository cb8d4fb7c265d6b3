import type { Kysely } from 'kysely'

// Frozen in time: imports nothing from the application.
export async function up(db: Kysely<unknown>): Promise<void> {
  // One row per key and idle period (`idle_since` = its last use, or creation if never
  // used): the warning mail is claimed, sent, and the key disabled at most once per period.
  await db.schema
    .createTable('unused_key_notices')
    .addColumn('key_id', 'text', (c) => c.notNull().references('access_keys.id').onDelete('cascade'))
    .addColumn('idle_since', 'timestamptz', (c) => c.notNull())
    .addColumn('claimed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('warned_at', 'timestamptz')
    .addColumn('disabled_at', 'timestamptz')
    .addPrimaryKeyConstraint('unused_key_notices_pk', ['key_id', 'idle_since'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('unused_key_notices').execute()
}
