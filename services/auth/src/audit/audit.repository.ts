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
