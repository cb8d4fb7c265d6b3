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

/** Events newest first, each with its actor's name: the username, or the key's name. */
export function listAuditEvents(db: Db, filter: AuditFilter) {
  let query = db
    .selectFrom('audit_events as e')
    .leftJoin('users as u', (join) => join.onRef('u.id', '=', 'e.actor_id').on('e.actor_type', '=', 'user'))
    .leftJoin('access_keys as k', (join) => join.onRef('k.id', '=', 'e.actor_id').on('e.actor_type', '=', 'access_key'))
    .selectAll('e')
    .select((eb) => eb.fn.coalesce('u.username', 'k.name').as('actor_name'))
  if (filter.accountId !== undefined) query = query.where('e.account_id', '=', filter.accountId)
  if (filter.actorId) query = query.where('e.actor_id', '=', filter.actorId)
  if (filter.targetId) query = query.where('e.target_id', '=', filter.targetId)
  if (filter.action) query = query.where('e.action', '=', filter.action)
  if (filter.since) query = query.where('e.created_at', '>=', new Date(filter.since))
  if (filter.until) query = query.where('e.created_at', '<', new Date(filter.until))
  if (filter.cursor) query = query.where('e.id', '<', filter.cursor)
  return query.orderBy('e.id', 'desc').limit(filter.limit).execute()
}
