import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { useSession } from './App.tsx'
import { type RouterOutputs, useTRPC } from './trpc.ts'
import { Empty, Field, Loading, Pager, ProblemNotice, TableWrap, useCursorPages, When } from './ui.tsx'

type AuditEvent = RouterOutputs['audit']['list']['items'][number]

const ACTIONS = [
  'token.issue',
  'token.rotate',
  'token.disable',
  'token.enable',
  'token.revoke',
  'auth.login',
  'auth.login_failed',
  'auth.logout',
  'user.create',
  'user.set_role',
  'user.remove',
  'direct.create',
  'direct.delete',
  'account.create',
  'account.suspend',
  'account.reactivate',
  'account.set_plan',
  'account.bootstrap',
  'auth.signup',
  'auth.boot',
  'signing_key.rotate',
]

interface Filters {
  action: string
  actorId: string
  targetId: string
  since: string
  until: string
}

const NONE: Filters = { action: '', actorId: '', targetId: '', since: '', until: '' }

/** Who did it, by name where tokend knows one. */
function actor(event: AuditEvent): string {
  if (event.actorName) return event.actorName
  const username = typeof event.data.username === 'string' ? event.data.username : null
  if (event.actorType === 'anonymous') return username ? `someone as ${username}` : 'anonymous'
  if (event.actorType === 'system') return 'tokend'
  return event.actorId ?? event.actorType
}

export function AuditPage() {
  const { accountId } = useSession()
  const trpc = useTRPC()
  const pages = useCursorPages()
  const [draft, setDraft] = useState<Filters>(NONE)
  const [filters, setFilters] = useState<Filters>(NONE)
  const [invalid, setInvalid] = useState<Partial<Filters>>({})

  const list = useQuery({
    ...trpc.audit.list.queryOptions({
      accountId,
      limit: 50,
      ...(filters.action ? { action: filters.action } : {}),
      ...(filters.actorId ? { actorId: filters.actorId } : {}),
      ...(filters.targetId ? { targetId: filters.targetId } : {}),
      ...(filters.since ? { since: new Date(filters.since).toISOString() } : {}),
      ...(filters.until ? { until: new Date(filters.until).toISOString() } : {}),
      ...(pages.cursor ? { cursor: pages.cursor } : {}),
    }),
    placeholderData: keepPreviousData,
  })

  const apply = (event: FormEvent) => {
    event.preventDefault()
    const errors: Partial<Filters> = {}
    if (draft.since && draft.until && draft.since >= draft.until) errors.until = 'Until must be after since.'
    setInvalid(errors)
    if (Object.keys(errors).length > 0) return
    setFilters({ ...draft, actorId: draft.actorId.trim(), targetId: draft.targetId.trim() })
    pages.reset()
  }
  const set = (field: keyof Filters) => (value: string) => setDraft((current) => ({ ...current, [field]: value }))

  return (
    <>
      <h1>Audit</h1>
      <form className="filters" aria-label="Filter the audit log" onSubmit={apply} noValidate>
        <Field label="Action">
          {(props) => (
            <select {...props} value={draft.action} onChange={(e) => set('action')(e.target.value)}>
              <option value="">Any</option>
              {ACTIONS.map((action) => (
                <option key={action}>{action}</option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Actor id">
          {(props) => (
            <input
              {...props}
              value={draft.actorId}
              placeholder="usr_… or tok_…"
              onChange={(e) => set('actorId')(e.target.value)}
            />
          )}
        </Field>
        <Field label="Target id">
          {(props) => <input {...props} value={draft.targetId} onChange={(e) => set('targetId')(e.target.value)} />}
        </Field>
        <Field label="Since">
          {(props) => (
            <input
              {...props}
              type="datetime-local"
              value={draft.since}
              onChange={(e) => set('since')(e.target.value)}
            />
          )}
        </Field>
        <Field label="Until" error={invalid.until}>
          {(props) => (
            <input
              {...props}
              type="datetime-local"
              value={draft.until}
              onChange={(e) => set('until')(e.target.value)}
            />
          )}
        </Field>
        <div className="actions">
          <button type="submit">Apply</button>
          <button
            type="button"
            onClick={() => {
              setDraft(NONE)
              setFilters(NONE)
              pages.reset()
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {list.isPending ? (
        <Loading what="the audit log" />
      ) : list.error ? (
        <ProblemNotice error={list.error} what="this account's audit log" />
      ) : list.data.items.length === 0 ? (
        <Empty>No events match.</Empty>
      ) : (
        <TableWrap label="Audit events">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((event) => (
                <tr key={event.id} data-action={event.action}>
                  <td>
                    <When at={event.createdAt} withTime />
                  </td>
                  <th scope="row">
                    <span className="actor">{actor(event)}</span>
                    <div className="muted small">{event.actorType.replace('_', ' ')}</div>
                  </th>
                  <td className="mono">{event.action}</td>
                  <td className="mono small">
                    {typeof event.data.name === 'string' ? `${event.data.name} ` : ''}
                    {event.targetId ?? ''}
                  </td>
                  <td className="small">{event.address ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {list.data && <Pager label="Audit" pages={pages} nextCursor={list.data.nextCursor} />}
    </>
  )
}
