import { type Kysely, sql } from 'kysely'

// Frozen in time: imports nothing from the application.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Usage credits of a key (SPEC §14), apart from access_keys so that leases do not
  // touch the key's row. `remaining` is what no replica has leased yet; `generation`
  // changes whenever the budget is set anew (an update, a refill), and a replica gives
  // back unused credits only to the generation it leased them from.
  await db.schema
    .createTable('key_credits')
    .addColumn('key_id', 'text', (c) => c.primaryKey().references('access_keys.id').onDelete('cascade'))
    .addColumn('remaining', 'bigint', (c) => c.notNull().check(sql`remaining >= 0`))
    .addColumn('refill_amount', 'bigint', (c) => c.check(sql`refill_amount >= 0`))
    .addColumn('refill_interval', 'text', (c) => c.check(sql`refill_interval in ('day', 'month')`))
    .addColumn('refilled_at', 'timestamptz', (c) => c.notNull())
    .addColumn('generation', 'bigint', (c) => c.notNull().defaultTo(0))
    .addCheckConstraint('key_credits_refill', sql`(refill_amount is null) = (refill_interval is null)`)
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('key_credits').execute()
}
