import type { Db } from '../db/database.ts'
import { newId } from '../ids.ts'
import type { Actor } from '../principal.ts'

export interface AuditEntry {
  accountId: string | null
  action: string
  targetType: string
  targetId: string | null
  data?: Record<string, unknown>
}

/** Records one audit event; call it inside the transaction that makes the change. */
export async function recordAudit(db: Db, actor: Actor, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      id: newId('aud'),
      account_id: entry.accountId,
      actor_type: actor.type,
      actor_id: actor.id,
      action: entry.action,
      target_type: entry.targetType,
      target_id: entry.targetId,
      address: actor.address,
      user_agent: actor.userAgent,
      request_id: actor.requestId,
      data: JSON.stringify(entry.data ?? {}),
    })
    .execute()
}

export interface AuditFilter {
  /** Undefined: every account (the operator's view). */
  accountId?: string | undefined
  actorId?: string | undefined
  targetId?: string | undefined
  action?: string | undefined
  since?: string | undefined
  until?: string | undefined
  limit: number
  cursor?: string | undefined
}

export function listAuditEvents(db: Db, filter: AuditFilter) {
  let query = db.selectFrom('audit_events').selectAll()
  if (filter.accountId !== undefined) query = query.where('account_id', '=', filter.accountId)
  if (filter.actorId) query = query.where('actor_id', '=', filter.actorId)
  if (filter.targetId) query = query.where('target_id', '=', filter.targetId)
  if (filter.action) query = query.where('action', '=', filter.action)
  if (filter.since) query = query.where('created_at', '>=', new Date(filter.since))
  if (filter.until) query = query.where('created_at', '<', new Date(filter.until))
  if (filter.cursor) query = query.where('id', '<', filter.cursor)
  return query.orderBy('id', 'desc').limit(filter.limit).execute()
}
