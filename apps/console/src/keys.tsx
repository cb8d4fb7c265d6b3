import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useSubscription } from '@trpc/tanstack-react-query'
import { type FormEvent, useEffect, useState } from 'react'
import { useSession } from './App.tsx'
import { type TokenInfo, useTRPC } from './trpc.ts'
import {
  Dialog,
  Empty,
  Field,
  fieldErrors,
  Loading,
  Pager,
  ProblemNotice,
  ShownOnce,
  TableWrap,
  useCursorPages,
  When,
} from './ui.tsx'

const PAGE_SIZE = 50

type Status = 'all' | 'active' | 'disabled' | 'expired' | 'revoked'
type Environment = 'live' | 'test'

/**
 * Keeps the keys on screen current: the change stream (`token.changes`) refetches
 * them on any key or account event of the account shown. While the stream is not
 * available (not yet open, lost, or refused) the listing is polled every second.
 */
function useLiveKeys(accountId: string): { live: boolean } {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const [ready, setReady] = useState(false)
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: trpc.token.pathKey() })
    void queryClient.invalidateQueries({ queryKey: trpc.account.get.queryKey() })
  }
  const subscription = useSubscription(
    trpc.token.changes.subscriptionOptions(undefined, {
      onStarted: () => setReady(false),
      onData: (event) => {
        if (event.type === 'ready') {
          setReady(true)
          // Whatever happened while the stream was away.
          refresh()
          return
        }
        const eventAccount = 'accountId' in event ? event.accountId : undefined
        if (eventAccount === undefined || eventAccount === accountId) refresh()
      },
      onError: () => setReady(false),
    }),
  )
  // A refused or broken stream is tried again now and then; polling covers the gap.
  useEffect(() => {
    if (subscription.status !== 'error') return
    const retry = setTimeout(() => subscription.reset(), 15_000)
    return () => clearTimeout(retry)
  }, [subscription])
  return { live: ready && subscription.status === 'pending' }
}

function matchesSearch(key: TokenInfo, search: string): boolean {
  return !search || key.name.toLowerCase().includes(search.trim().toLowerCase())
}

/** A day count typed into a filter: a whole number from 1 to 36500, else the default. */
function dayCount(value: string, fallback: number): number {
  const days = Number(value)
  return Number.isInteger(days) && days >= 1 && days <= 36_500 ? days : fallback
}

export function KeysPage() {
  const { accountId, canWrite } = useSession()
  const trpc = useTRPC()
  const [environment, setEnvironment] = useState<Environment | ''>('')
  const [status, setStatus] = useState<Status>('all')
  const [search, setSearch] = useState('')
  const [expiringSoon, setExpiringSoon] = useState(false)
  const [unused, setUnused] = useState(false)
  const [expiringDays, setExpiringDays] = useState('30')
  const [unusedDays, setUnusedDays] = useState('90')
  // Filtered by tokend (token.list's expiringWithin / unusedFor), so paging stays right.
  const expiringWithin = expiringSoon ? dayCount(expiringDays, 30) : undefined
  const unusedFor = unused ? dayCount(unusedDays, 90) : undefined
  const pages = useCursorPages()
  const { live } = useLiveKeys(accountId)
  const [dialog, setDialog] = useState<
    { kind: 'new' } | { kind: 'rotate'; key: TokenInfo } | { kind: 'revoke'; key: TokenInfo } | null
  >(null)

  const list = useQuery({
    ...trpc.token.list.queryOptions({
      accountId,
      status,
      limit: PAGE_SIZE,
      ...(environment ? { environment } : {}),
      ...(expiringWithin ? { expiringWithin } : {}),
      ...(unusedFor ? { unusedFor } : {}),
      ...(pages.cursor ? { cursor: pages.cursor } : {}),
    }),
    placeholderData: keepPreviousData,
    // Keys created elsewhere send no change event: a slow refresh picks them up.
    refetchInterval: live ? 30_000 : 1_000,
  })

  // A filter change starts again from the first page.
  // biome-ignore lint/correctness/useExhaustiveDependencies: reset on these changes only
  useEffect(() => pages.reset(), [environment, status, accountId, expiringWithin, unusedFor])

  const items = (list.data?.items ?? []).filter((key) => matchesSearch(key, search))
  const filtered = Boolean(search || expiringSoon || unused || environment || status !== 'all')

  return (
    <>
      <div className="page-head">
        <h1>Keys</h1>
        <span className={`live ${live ? 'on' : 'off'}`} role="status" aria-live="polite">
          {live ? 'Live' : 'Refreshing every second'}
        </span>
        {canWrite && (
          <button type="button" className="primary" onClick={() => setDialog({ kind: 'new' })}>
            New key
          </button>
        )}
      </div>
      <form className="filters" aria-label="Filter keys" onSubmit={(e) => e.preventDefault()}>
        <Field label="Search by name">
          {(props) => <input {...props} type="search" value={search} onChange={(e) => setSearch(e.target.value)} />}
        </Field>
        <Field label="Environment">
          {(props) => (
            <select {...props} value={environment} onChange={(e) => setEnvironment(e.target.value as Environment | '')}>
              <option value="">All</option>
              <option value="live">live</option>
              <option value="test">test</option>
            </select>
          )}
        </Field>
        <Field label="Status">
          {(props) => (
            <select {...props} value={status} onChange={(e) => setStatus(e.target.value as Status)}>
              <option value="all">All</option>
              <option value="active">Active</option>
              <option value="disabled">Disabled</option>
              <option value="expired">Expired</option>
              <option value="revoked">Revoked</option>
            </select>
          )}
        </Field>
        <span className="check-days">
          <label className="check">
            <input type="checkbox" checked={expiringSoon} onChange={(e) => setExpiringSoon(e.target.checked)} />{' '}
            Expiring within {dayCount(expiringDays, 30)} days
          </label>
          <input
            className="days"
            type="number"
            min={1}
            max={36500}
            aria-label="Days until expiry"
            value={expiringDays}
            onChange={(e) => setExpiringDays(e.target.value)}
          />
        </span>
        <span className="check-days">
          <label className="check">
            <input type="checkbox" checked={unused} onChange={(e) => setUnused(e.target.checked)} /> Unused for{' '}
            {dayCount(unusedDays, 90)} days
          </label>
          <input
            className="days"
            type="number"
            min={1}
            max={36500}
            aria-label="Days without use"
            value={unusedDays}
            onChange={(e) => setUnusedDays(e.target.value)}
          />
        </span>
      </form>
      {list.isPending ? (
        <Loading what="keys" />
      ) : list.error && !list.data ? (
        <ProblemNotice error={list.error} what="this account's keys" />
      ) : (
        <>
          {list.error && <ProblemNotice error={list.error} />}
          {items.length === 0 ? (
            <Empty>
              {filtered || pages.page > 0 ? (
                'No keys match these filters.'
              ) : (
                <>No keys yet{canWrite ? ' — create one with New key.' : '.'}</>
              )}
            </Empty>
          ) : (
            <KeysTable
              items={items}
              canWrite={canWrite}
              onRotate={(key) => setDialog({ kind: 'rotate', key })}
              onRevoke={(key) => setDialog({ kind: 'revoke', key })}
            />
          )}
          <Pager label="Keys" pages={pages} nextCursor={list.data?.nextCursor ?? null} />
        </>
      )}
      {dialog?.kind === 'new' && <NewKeyDialog onClose={() => setDialog(null)} />}
      {dialog?.kind === 'rotate' && <RotateDialog tokenKey={dialog.key} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'revoke' && <RevokeDialog tokenKey={dialog.key} onClose={() => setDialog(null)} />}
    </>
  )
}

function KeysTable({
  items,
  canWrite,
  onRotate,
  onRevoke,
}: {
  items: TokenInfo[]
  canWrite: boolean
  onRotate: (key: TokenInfo) => void
  onRevoke: (key: TokenInfo) => void
}) {
  return (
    <TableWrap label="Keys">
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Start</th>
            <th scope="col">Environment</th>
            <th scope="col">Scopes</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            {canWrite && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {items.map((key) => (
            <tr key={key.id} data-key-id={key.id}>
              <th scope="row">
                {key.name}
                {key.detail && <div className="muted small">{key.detail}</div>}
              </th>
              <td className="mono">{key.start}…</td>
              <td>
                <span className={`badge env-${key.environment}`}>{key.environment}</span>
              </td>
              <td>{key.scopes.length ? key.scopes.join(', ') : <span className="muted">none</span>}</td>
              <td>
                <span className={`badge status-${key.status}`} data-status={key.status}>
                  {key.status}
                </span>
              </td>
              <td>
                <When at={key.createdAt} />
              </td>
              <td>
                <When at={key.expiresAt} never="never" />
              </td>
              <td>
                <When at={key.lastUsedAt} never="never" withTime />
              </td>
              {canWrite && (
                <td>
                  <KeyActions tokenKey={key} onRotate={onRotate} onRevoke={onRevoke} />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  )
}

function useKeysChanged() {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  return () => {
    void queryClient.invalidateQueries({ queryKey: trpc.token.pathKey() })
    void queryClient.invalidateQueries({ queryKey: trpc.account.get.queryKey() })
  }
}

function KeyActions({
  tokenKey,
  onRotate,
  onRevoke,
}: {
  tokenKey: TokenInfo
  onRotate: (key: TokenInfo) => void
  onRevoke: (key: TokenInfo) => void
}) {
  const trpc = useTRPC()
  const changed = useKeysChanged()
  const setDisabled = useMutation(trpc.token.setDisabled.mutationOptions({ onSuccess: changed }))
  if (tokenKey.status === 'revoked') return <span className="muted">—</span>
  const label = `${tokenKey.name} (${tokenKey.start})`
  return (
    <div className="row-actions">
      <button type="button" onClick={() => onRotate(tokenKey)} aria-label={`Rotate ${label}`}>
        Rotate
      </button>
      <button
        type="button"
        disabled={setDisabled.isPending}
        onClick={() => setDisabled.mutate({ id: tokenKey.id, disabled: !tokenKey.disabled })}
        aria-label={`${tokenKey.disabled ? 'Enable' : 'Disable'} ${label}`}
      >
        {tokenKey.disabled ? 'Enable' : 'Disable'}
      </button>
      <button type="button" className="danger" onClick={() => onRevoke(tokenKey)} aria-label={`Revoke ${label}`}>
        Revoke
      </button>
      {setDisabled.error && <ProblemNotice error={setDisabled.error} />}
    </div>
  )
}

const PRESETS = [
  { value: '30d', label: '30 days' },
  { value: '90d', label: '90 days' },
  { value: '1y', label: '1 year' },
  { value: 'never', label: 'Never' },
  { value: 'date', label: 'On a date…' },
] as const

function NewKeyDialog({ onClose }: { onClose: () => void }) {
  const { accountId } = useSession()
  const trpc = useTRPC()
  const changed = useKeysChanged()
  const issue = useMutation(trpc.token.issue.mutationOptions({ onSuccess: changed }))
  const [name, setName] = useState('')
  const [detail, setDetail] = useState('')
  const [environment, setEnvironment] = useState<Environment>('test')
  const [role, setRole] = useState<'manager' | 'admin'>('manager')
  const [scopes, setScopes] = useState('')
  const [expiry, setExpiry] = useState<(typeof PRESETS)[number]['value']>('90d')
  const [date, setDate] = useState('')
  const [local, setLocal] = useState<Record<string, string>>({})

  if (issue.data) {
    const done = () => {
      issue.reset()
      onClose()
    }
    return (
      <Dialog title={`Key "${issue.data.name}" created`} onClose={done} locked>
        <ShownOnce label="plaintext key" secret={issue.data.token} onDone={done} />
      </Dialog>
    )
  }

  const submit = (event: FormEvent) => {
    event.preventDefault()
    const errors: Record<string, string> = {}
    if (!name.trim()) errors.name = 'Give the key a name (e.g. the service that uses it).'
    if (expiry === 'date' && !date) errors.expiresAt = 'Pick the day the key expires.'
    if (expiry === 'date' && date && Date.parse(`${date}T23:59:59`) <= Date.now())
      errors.expiresAt = 'Pick a day in the future.'
    setLocal(errors)
    if (Object.keys(errors).length > 0) return
    issue.mutate({
      accountId,
      name: name.trim(),
      environment,
      role,
      scopes: scopes.split(/[\s,]+/).filter(Boolean),
      ...(detail.trim() ? { detail: detail.trim() } : {}),
      ...(expiry === 'date' ? { expiresAt: new Date(`${date}T23:59:59`).toISOString() } : { expiresIn: expiry }),
    })
  }

  const errors = { ...fieldErrors(issue.error), ...local }
  const scopeError = Object.entries(errors).find(([path]) => path.startsWith('scopes'))?.[1]
  return (
    <Dialog title="New key" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <Field label="Name" error={errors.name}>
          {(props) => <input {...props} value={name} onChange={(e) => setName(e.target.value)} maxLength={100} />}
        </Field>
        <Field label="Detail (optional)" error={errors.detail}>
          {(props) => <input {...props} value={detail} onChange={(e) => setDetail(e.target.value)} maxLength={500} />}
        </Field>
        <div className="field-row">
          <Field label="Environment" error={errors.environment}>
            {(props) => (
              <select {...props} value={environment} onChange={(e) => setEnvironment(e.target.value as Environment)}>
                <option value="test">test</option>
                <option value="live">live</option>
              </select>
            )}
          </Field>
          <Field label="Role" error={errors.role}>
            {(props) => (
              <select {...props} value={role} onChange={(e) => setRole(e.target.value as 'manager' | 'admin')}>
                <option value="manager">manager (read)</option>
                <option value="admin">admin</option>
              </select>
            )}
          </Field>
        </div>
        <Field label="Scopes" hint="Separated by spaces or commas, e.g. recordings:read" error={scopeError}>
          {(props) => <input {...props} value={scopes} onChange={(e) => setScopes(e.target.value)} />}
        </Field>
        <div className="field-row">
          <Field label="Expires" error={errors.expiresIn}>
            {(props) => (
              <select {...props} value={expiry} onChange={(e) => setExpiry(e.target.value as typeof expiry)}>
                {PRESETS.map((preset) => (
                  <option key={preset.value} value={preset.value}>
                    {preset.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
          {expiry === 'date' && (
            <Field label="Expiry date" error={errors.expiresAt}>
              {(props) => <input {...props} type="date" value={date} onChange={(e) => setDate(e.target.value)} />}
            </Field>
          )}
        </div>
        {issue.error && !Object.keys(fieldErrors(issue.error)).length && <ProblemNotice error={issue.error} />}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={issue.isPending}>
            {issue.isPending ? 'Creating…' : 'Create key'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

const OVERLAPS = [
  { value: 'keep', label: 'Keep its current expiry (both keys work)' },
  { value: '3600', label: '1 hour' },
  { value: '86400', label: '24 hours' },
  { value: '604800', label: '7 days' },
  { value: '0', label: 'Now (stop the old key at once)' },
] as const

function RotateDialog({ tokenKey, onClose }: { tokenKey: TokenInfo; onClose: () => void }) {
  const trpc = useTRPC()
  const changed = useKeysChanged()
  const rotate = useMutation(trpc.token.rotate.mutationOptions({ onSuccess: changed }))
  const [overlap, setOverlap] = useState<(typeof OVERLAPS)[number]['value']>('86400')
  if (rotate.data) {
    const done = () => {
      rotate.reset()
      onClose()
    }
    return (
      <Dialog title={`Key "${rotate.data.name}" rotated`} onClose={done} locked>
        <ShownOnce label="new plaintext key" secret={rotate.data.token} onDone={done} />
      </Dialog>
    )
  }
  return (
    <Dialog title={`Rotate "${tokenKey.name}"`} onClose={onClose}>
      <form
        onSubmit={(event) => {
          event.preventDefault()
          rotate.mutate({ id: tokenKey.id, ...(overlap === 'keep' ? {} : { oldExpiresIn: Number(overlap) }) })
        }}
      >
        <p>
          A new key with the same name, role, scopes and environment is issued. How long should the old key (
          <span className="mono">{tokenKey.start}…</span>) keep working?
        </p>
        <fieldset>
          <legend>Old key stops working</legend>
          {OVERLAPS.map((option) => (
            <label key={option.value} className="check">
              <input
                type="radio"
                name="overlap"
                value={option.value}
                checked={overlap === option.value}
                onChange={() => setOverlap(option.value)}
              />{' '}
              {option.value === 'keep' || option.value === '0' ? option.label : `In ${option.label}`}
            </label>
          ))}
        </fieldset>
        {rotate.error && <ProblemNotice error={rotate.error} />}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={rotate.isPending}>
            {rotate.isPending ? 'Rotating…' : 'Rotate'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function RevokeDialog({ tokenKey, onClose }: { tokenKey: TokenInfo; onClose: () => void }) {
  const trpc = useTRPC()
  const changed = useKeysChanged()
  const revoke = useMutation(
    trpc.token.revoke.mutationOptions({
      onSuccess: () => {
        changed()
        onClose()
      },
    }),
  )
  const [typed, setTyped] = useState('')
  const matches = typed === tokenKey.name
  return (
    <Dialog title={`Revoke "${tokenKey.name}"`} onClose={onClose}>
      <form
        onSubmit={(event) => {
          event.preventDefault()
          if (matches) revoke.mutate({ id: tokenKey.id })
        }}
      >
        <p>
          Revoking is final: every service presenting <span className="mono">{tokenKey.start}…</span> is refused at
          once, on every replica.
        </p>
        <Field label={`Type the key's name (${tokenKey.name}) to confirm`}>
          {(props) => <input {...props} value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" />}
        </Field>
        {revoke.error && <ProblemNotice error={revoke.error} />}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={!matches || revoke.isPending}>
            Revoke key
          </button>
        </div>
      </form>
    </Dialog>
  )
}
