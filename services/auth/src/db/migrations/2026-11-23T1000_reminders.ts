import type { Kysely } from 'kysely'

// Frozen in time: imports nothing from the application.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('expiry_reminders')
    .addColumn('key_id', 'text', (c) => c.notNull().references('access_keys.id').onDelete('cascade'))
    .addColumn('threshold_days', 'integer', (c) => c.notNull())
    .addColumn('claimed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz')
    .addPrimaryKeyConstraint('expiry_reminders_pk', ['key_id', 'threshold_days'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('expiry_reminders').execute()
}
