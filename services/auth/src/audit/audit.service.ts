import type { Deps } from '../deps.ts'
import { ForbiddenError } from '../errors.ts'
import type { Principal } from '../principal.ts'
import { targetAccount } from '../tokens/token.service.ts'
import { type AuditFilter, listAuditEvents } from './audit.repository.ts'

export interface AuditEvent {
  id: string
  accountId: string | null
  actorType: string
  actorId: string | null
  /** The actor's username or key name, when it still exists. */
  actorName: string | null
  action: string
  targetType: string | null
  targetId: string | null
  address: string | null
  userAgent: string | null
  requestId: string | null
  data: Record<string, unknown>
  createdAt: string
}

/** Admins see their own account's events; the operator account sees every account's. */
export async function listAudit(
  deps: Deps,
  principal: Principal,
  input: Omit<AuditFilter, 'accountId'> & { accountId?: string | undefined },
): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
  if (principal.role !== 'admin') throw new ForbiddenError('the audit log needs an admin key')
  const accountId = principal.operator ? input.accountId : targetAccount(principal, input.accountId)
  const rows = await listAuditEvents(deps.db, { ...input, accountId, limit: input.limit + 1 })
  const items = rows.slice(0, input.limit).map(
    (row): AuditEvent => ({
      id: row.id,
      accountId: row.account_id,
      actorType: row.actor_type,
      actorId: row.actor_id,
      actorName: row.actor_name,
      action: row.action,
      targetType: row.target_type,
      targetId: row.target_id,
      address: row.address,
      userAgent: row.user_agent,
      requestId: row.request_id,
      data: row.data,
      createdAt: row.created_at.toISOString(),
    }),
  )
  return { items, nextCursor: rows.length > input.limit ? (items.at(-1)?.id ?? null) : null }
}
