import { type Kysely, sql } from 'kysely'

// Frozen in time: imports nothing from the application.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('access_keys')
    .addColumn('meta', 'jsonb')
    .addColumn('allowed_cidrs', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('access_keys').dropColumn('allowed_cidrs').dropColumn('meta').execute()
}
