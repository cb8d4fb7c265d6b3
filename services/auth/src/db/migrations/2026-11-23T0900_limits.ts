import { type Kysely, sql } from 'kysely'

// Frozen in time: imports nothing from the application.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rate_limit_counters')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('window_ms', 'integer', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('used', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('rate_limit_counters_pk', ['account_id', 'name', 'window_ms', 'window_start'])
    .execute()
  await db.schema.createIndex('rate_limit_counters_start').on('rate_limit_counters').column('window_start').execute()
  await db.schema
    .createIndex('access_keys_expiry')
    .on('access_keys')
    .column('expires_at')
    .where(sql.ref('expires_at'), 'is not', null)
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('access_keys_expiry').execute()
  await db.schema.dropTable('rate_limit_counters').execute()
}
