import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { type FormEvent, useState } from 'react'
import { useSession } from './App.tsx'
import { navigate } from './router.tsx'
import { useTRPC } from './trpc.ts'
import { Empty, Field, fieldErrors, Loading, Pager, ProblemNotice, TableWrap, useCursorPages, When } from './ui.tsx'

export function AccountPage() {
  const { accountId } = useSession()
  const trpc = useTRPC()
  const account = useQuery(trpc.account.get.queryOptions({ accountId }))
  if (account.isPending) return <Loading what="the account" />
  if (account.error) return <ProblemNotice error={account.error} what="this account" />
  const { limits } = account.data
  const windowLabel =
    limits.creationWindowMs === 60_000 ? 'this minute' : `in the last ${limits.creationWindowMs / 1000} s`
  return (
    <>
      <h1>Account</h1>
      <dl className="facts">
        <div>
          <dt>Name</dt>
          <dd>{account.data.name}</dd>
        </div>
        <div>
          <dt>Id</dt>
          <dd className="mono">{account.data.id}</dd>
        </div>
        <div>
          <dt>Plan</dt>
          <dd>
            <span className="badge">{account.data.plan}</span>
            {account.data.plan === 'trial' && <span className="muted"> test keys only, with a bounded expiry</span>}
          </dd>
        </div>
        <div>
          <dt>Status</dt>
          <dd>
            <span className={`badge status-${account.data.status}`}>{account.data.status}</span>
          </dd>
        </div>
        <div>
          <dt>Active keys</dt>
          <dd>
            <Meter used={limits.activeKeys} max={limits.maxActiveKeys} label="active keys" />
          </dd>
        </div>
        <div>
          <dt>Key creations {windowLabel}</dt>
          <dd>
            <Meter used={limits.creationsInWindow} max={limits.maxCreationsPerWindow} label="key creations" />
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>
            <When at={account.data.createdAt} />
          </dd>
        </div>
      </dl>
    </>
  )
}

function Meter({ used, max, label }: { used: number; max: number; label: string }) {
  return (
    <span className="meter">
      <meter min={0} max={max} value={used} high={max * 0.8} aria-label={label} />
      <span className="usage">
        {used} / {max}
      </span>
    </span>
  )
}

export function AccountsPage() {
  const { principal, canWrite } = useSession()
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const pages = useCursorPages()
  const list = useQuery({
    ...trpc.account.list.queryOptions({ limit: 50, ...(pages.cursor ? { cursor: pages.cursor } : {}) }),
    placeholderData: keepPreviousData,
  })
  const changed = () => {
    void queryClient.invalidateQueries({ queryKey: trpc.account.pathKey() })
    void queryClient.invalidateQueries({ queryKey: trpc.token.pathKey() })
  }
  const setStatus = useMutation(trpc.account.setStatus.mutationOptions({ onSuccess: changed }))
  const setPlan = useMutation(trpc.account.setPlan.mutationOptions({ onSuccess: changed }))
  const create = useMutation(trpc.account.create.mutationOptions({ onSuccess: changed }))
  const [name, setName] = useState('')
  const [plan, setNewPlan] = useState<'trial' | 'paid'>('trial')
  const [nameError, setNameError] = useState<string | undefined>()

  const submit = (event: FormEvent) => {
    event.preventDefault()
    if (!name.trim()) {
      setNameError('Give the account a name.')
      return
    }
    setNameError(undefined)
    create.mutate({ name: name.trim(), plan }, { onSuccess: () => setName('') })
  }
  const errors = fieldErrors(create.error)

  return (
    <>
      <h1>Accounts</h1>
      {canWrite && (
        <form className="filters" aria-label="Create an account" onSubmit={submit} noValidate>
          <Field label="New account name" error={nameError ?? errors.name}>
            {(props) => <input {...props} value={name} onChange={(e) => setName(e.target.value)} maxLength={100} />}
          </Field>
          <Field label="Plan">
            {(props) => (
              <select {...props} value={plan} onChange={(e) => setNewPlan(e.target.value as 'trial' | 'paid')}>
                <option value="trial">trial</option>
                <option value="paid">paid</option>
              </select>
            )}
          </Field>
          <div className="actions">
            <button type="submit" className="primary" disabled={create.isPending}>
              Create account
            </button>
          </div>
          {create.data && (
            <p role="status" className="muted">
              Created {create.data.name} ({create.data.id}).
            </p>
          )}
        </form>
      )}
      {create.error && !Object.keys(errors).length && <ProblemNotice error={create.error} />}
      {setStatus.error && <ProblemNotice error={setStatus.error} />}
      {setPlan.error && <ProblemNotice error={setPlan.error} />}
      {list.isPending ? (
        <Loading what="accounts" />
      ) : list.error ? (
        <ProblemNotice error={list.error} what="the accounts" />
      ) : list.data.items.length === 0 ? (
        <Empty>No accounts.</Empty>
      ) : (
        <TableWrap label="Accounts">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Id</th>
                <th scope="col">Plan</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((account) => (
                <tr key={account.id} data-account-id={account.id}>
                  <th scope="row">
                    {account.name}
                    {account.operator && <span className="badge">operator</span>}
                  </th>
                  <td className="mono small">{account.id}</td>
                  <td>
                    {canWrite && !account.operator ? (
                      <select
                        aria-label={`Plan of ${account.name}`}
                        value={account.plan}
                        onChange={(e) =>
                          setPlan.mutate({ accountId: account.id, plan: e.target.value as 'trial' | 'paid' })
                        }
                      >
                        <option value="trial">trial</option>
                        <option value="paid">paid</option>
                      </select>
                    ) : (
                      <span className="badge">{account.plan}</span>
                    )}
                  </td>
                  <td>
                    <span className={`badge status-${account.status}`} data-status={account.status}>
                      {account.status}
                    </span>
                  </td>
                  <td>
                    <When at={account.createdAt} />
                  </td>
                  <td>
                    <div className="row-actions">
                      <button
                        type="button"
                        onClick={() =>
                          navigate(account.id === principal.accountId ? '/keys' : `/keys?account=${account.id}`)
                        }
                        aria-label={`Open ${account.name}`}
                      >
                        Open
                      </button>
                      {canWrite && !account.operator && (
                        <button
                          type="button"
                          className={account.status === 'active' ? 'danger' : ''}
                          disabled={setStatus.isPending}
                          aria-label={`${account.status === 'active' ? 'Suspend' : 'Reactivate'} ${account.name}`}
                          onClick={() =>
                            setStatus.mutate({
                              accountId: account.id,
                              status: account.status === 'active' ? 'suspended' : 'active',
                            })
                          }
                        >
                          {account.status === 'active' ? 'Suspend' : 'Reactivate'}
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      {list.data && <Pager label="Accounts" pages={pages} nextCursor={list.data.nextCursor} />}
    </>
  )
}
