import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { useSession } from './App.tsx'
import { useTRPC } from './trpc.ts'
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

export function UsersPage() {
  const { accountId, canWrite, principal } = useSession()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const pages = useCursorPages()
  const [creating, setCreating] = useState(false)
  const list = useQuery({
    ...trpc.user.list.queryOptions({ accountId, limit: 50, ...(pages.cursor ? { cursor: pages.cursor } : {}) }),
    placeholderData: keepPreviousData,
  })
  const changed = () => void queryClient.invalidateQueries({ queryKey: trpc.user.list.pathKey() })
  const setRole = useMutation(trpc.user.setRole.mutationOptions({ onSuccess: changed }))
  const remove = useMutation(trpc.user.remove.mutationOptions({ onSuccess: changed }))
  const self = principal.kind === 'session' ? principal.userId : null

  return (
    <>
      <div className="page-head">
        <h1>Users</h1>
        {canWrite && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New user
          </button>
        )}
      </div>
      {(setRole.error || remove.error) && <ProblemNotice error={setRole.error ?? remove.error} />}
      {list.isPending ? (
        <Loading what="users" />
      ) : list.error ? (
        <ProblemNotice error={list.error} what="this account's users" />
      ) : list.data.items.length === 0 ? (
        <Empty>No users yet{canWrite ? ' — create one with New user.' : '.'}</Empty>
      ) : (
        <TableWrap label="Users">
          <table>
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                {canWrite && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((user) => (
                <tr key={user.id}>
                  <th scope="row">{user.username}</th>
                  <td>{user.email}</td>
                  <td>
                    {canWrite && user.id !== self ? (
                      <select
                        aria-label={`Role of ${user.username}`}
                        value={user.role}
                        onChange={(e) => setRole.mutate({ id: user.id, role: e.target.value as 'admin' | 'manager' })}
                      >
                        <option value="admin">admin</option>
                        <option value="manager">manager</option>
                      </select>
                    ) : (
                      <span className="badge">{user.role}</span>
                    )}
                  </td>
                  <td>
                    <When at={user.createdAt} />
                  </td>
                  {canWrite && (
                    <td>
                      {user.id !== self && (
                        <button
                          type="button"
                          className="danger"
                          aria-label={`Remove ${user.username}`}
                          onClick={() => {
                            if (window.confirm(`Remove ${user.username}? Their sessions end at once.`)) {
                              remove.mutate({ id: user.id })
                            }
                          }}
                        >
                          Remove
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {list.data && <Pager label="Users" pages={pages} nextCursor={list.data.nextCursor} />}
      {creating && <NewUserDialog onClose={() => setCreating(false)} />}
    </>
  )
}

function NewUserDialog({ onClose }: { onClose: () => void }) {
  const { accountId } = useSession()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const create = useMutation(
    trpc.user.create.mutationOptions({
      onSuccess: () => {
        void queryClient.invalidateQueries({ queryKey: trpc.user.list.pathKey() })
        onClose()
      },
    }),
  )
  const [form, setForm] = useState({ username: '', email: '', password: '', role: 'manager' as 'admin' | 'manager' })
  const errors = fieldErrors(create.error)
  const submit = (event: FormEvent) => {
    event.preventDefault()
    create.mutate({ ...form, accountId })
  }
  const set = (field: keyof typeof form) => (value: string) => setForm((current) => ({ ...current, [field]: value }))
  return (
    <Dialog title="New user" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <Field label="Username" error={errors.username}>
          {(props) => <input {...props} value={form.username} onChange={(e) => set('username')(e.target.value)} />}
        </Field>
        <Field label="Email" error={errors.email}>
          {(props) => (
            <input {...props} type="email" value={form.email} onChange={(e) => set('email')(e.target.value)} />
          )}
        </Field>
        <Field label="Password" hint="At least 12 characters" error={errors.password}>
          {(props) => (
            <input
              {...props}
              type="password"
              autoComplete="new-password"
              value={form.password}
              onChange={(e) => set('password')(e.target.value)}
            />
          )}
        </Field>
        <Field label="Role" error={errors.role}>
          {(props) => (
            <select {...props} value={form.role} onChange={(e) => set('role')(e.target.value)}>
              <option value="manager">manager (read)</option>
              <option value="admin">admin</option>
            </select>
          )}
        </Field>
        {create.error && !Object.keys(errors).length && <ProblemNotice error={create.error} />}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create user
          </button>
        </div>
      </form>
    </Dialog>
  )
}

export function DirectsPage() {
  const { accountId, canWrite } = useSession()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const pages = useCursorPages()
  const [creating, setCreating] = useState(false)
  const list = useQuery({
    ...trpc.direct.list.queryOptions({ accountId, limit: 50, ...(pages.cursor ? { cursor: pages.cursor } : {}) }),
    placeholderData: keepPreviousData,
  })
  const remove = useMutation(
    trpc.direct.delete.mutationOptions({
      onSuccess: () => void queryClient.invalidateQueries({ queryKey: trpc.direct.list.pathKey() }),
    }),
  )
  return (
    <>
      <div className="page-head">
        <h1>Direct links</h1>
        {canWrite && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New direct link
          </button>
        )}
      </div>
      <p className="muted">A direct link opens one resource for 4 hours without an account (SPEC §8).</p>
      {remove.error && <ProblemNotice error={remove.error} />}
      {list.isPending ? (
        <Loading what="direct links" />
      ) : list.error ? (
        <ProblemNotice error={list.error} what="this account's direct links" />
      ) : list.data.items.length === 0 ? (
        <Empty>No direct links yet{canWrite ? ' — create one with New direct link.' : '.'}</Empty>
      ) : (
        <TableWrap label="Direct links">
          <table>
            <thead>
              <tr>
                <th scope="col">Resource</th>
                <th scope="col">Start</th>
                <th scope="col">Environment</th>
                <th scope="col">Created</th>
                {canWrite && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((direct) => (
                <tr key={direct.id}>
                  <th scope="row" className="mono">
                    {direct.resourceType}/{direct.resourceId}
                  </th>
                  <td className="mono">{direct.start}…</td>
                  <td>
                    <span className={`badge env-${direct.environment}`}>{direct.environment}</span>
                  </td>
                  <td>
                    <When at={direct.createdAt} />
                  </td>
                  {canWrite && (
                    <td>
                      <button
                        type="button"
                        className="danger"
                        aria-label={`Delete the link to ${direct.resourceType}/${direct.resourceId}`}
                        onClick={() => {
                          if (
                            window.confirm('Delete this link? Its hash and the tokens booted from it stop working.')
                          ) {
                            remove.mutate({ id: direct.id })
                          }
                        }}
                      >
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {list.data && <Pager label="Direct links" pages={pages} nextCursor={list.data.nextCursor} />}
      {creating && <NewDirectDialog onClose={() => setCreating(false)} />}
    </>
  )
}

function NewDirectDialog({ onClose }: { onClose: () => void }) {
  const { accountId } = useSession()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const create = useMutation(
    trpc.direct.create.mutationOptions({
      onSuccess: () => void queryClient.invalidateQueries({ queryKey: trpc.direct.list.pathKey() }),
    }),
  )
  const [form, setForm] = useState({ resourceType: '', resourceId: '', environment: 'test' as 'live' | 'test' })
  if (create.data) {
    const done = () => {
      create.reset()
      onClose()
    }
    return (
      <Dialog title="Direct link created" onClose={done} locked>
        <ShownOnce label="direct hash" secret={create.data.hash} onDone={done} />
      </Dialog>
    )
  }
  const errors = fieldErrors(create.error)
  const set = (field: keyof typeof form) => (value: string) => setForm((current) => ({ ...current, [field]: value }))
  return (
    <Dialog title="New direct link" onClose={onClose}>
      <form
        noValidate
        onSubmit={(event) => {
          event.preventDefault()
          create.mutate({ ...form, accountId })
        }}
      >
        <Field label="Resource type" hint='e.g. "ai" or "call_flow"' error={errors.resourceType}>
          {(props) => (
            <input {...props} value={form.resourceType} onChange={(e) => set('resourceType')(e.target.value)} />
          )}
        </Field>
        <Field label="Resource id" error={errors.resourceId}>
          {(props) => <input {...props} value={form.resourceId} onChange={(e) => set('resourceId')(e.target.value)} />}
        </Field>
        <Field label="Environment" error={errors.environment}>
          {(props) => (
            <select {...props} value={form.environment} onChange={(e) => set('environment')(e.target.value)}>
              <option value="test">test</option>
              <option value="live">live</option>
            </select>
          )}
        </Field>
        {create.error && !Object.keys(errors).length && <ProblemNotice error={create.error} />}
        <div className="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create link
          </button>
        </div>
      </form>
    </Dialog>
  )
}
