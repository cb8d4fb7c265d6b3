import { QueryClientProvider, useQuery, useQueryClient } from '@tanstack/react-query'
import { createContext, type FormEvent, useContext, useEffect, useId, useRef, useState } from 'react'
import { AccountPage, AccountsPage } from './accounts.tsx'
import { AuditPage } from './audit.tsx'
import { KeysPage } from './keys.tsx'
import { DirectsPage, UsersPage } from './people.tsx'
import { Link, navigate, useLocation } from './router.tsx'
import {
  createClient,
  createQueryClient,
  type Principal,
  problemOf,
  sessionEvents,
  signIn,
  signOut,
  TRPCProvider,
  useTRPC,
} from './trpc.ts'
import { Field, Loading, ProblemNotice } from './ui.tsx'

export function App() {
  const [queryClient] = useState(createQueryClient)
  const [trpcClient] = useState(createClient)
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <Shell />
      </TRPCProvider>
    </QueryClientProvider>
  )
}

/** Who is signed in, and which account the pages act on (operators may pick any). */
export interface Session {
  principal: Principal
  accountId: string
  /** Admin of the account shown: may create, change and revoke. */
  canWrite: boolean
  /** A link to `path` keeping the chosen account. */
  href: (path: string) => string
}

const SessionContext = createContext<Session | null>(null)

export function useSession(): Session {
  const session = useContext(SessionContext)
  if (!session) throw new Error('useSession outside the signed-in shell')
  return session
}

function Shell() {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const me = useQuery({ ...trpc.me.queryOptions(), staleTime: 60_000 })
  const [expired, setExpired] = useState(false)
  const signedIn = useRef(false)
  if (me.data) signedIn.current = true

  useEffect(() => {
    // Any call answered 401 once signed in: the session has ended (expired, revoked, signed out elsewhere).
    const onExpired = () => {
      if (signedIn.current) setExpired(true)
    }
    sessionEvents.addEventListener('expired', onExpired)
    return () => sessionEvents.removeEventListener('expired', onExpired)
  }, [])

  const afterSignIn = async () => {
    setExpired(false)
    // Whoever signs in now, nothing of the previous session is shown.
    await queryClient.resetQueries()
  }

  if (me.isPending) return <Loading what="the console" />
  const problem = me.error ? problemOf(me.error) : null
  if (expired || problem?.kind === 'unauthorized') {
    return <SignIn expired={expired || signedIn.current} onSignedIn={afterSignIn} />
  }
  if (problem || !me.data) {
    return (
      <main className="center">
        <h1>tokend console</h1>
        <ProblemNotice error={me.error} />
        <button type="button" onClick={() => void me.refetch()}>
          Try again
        </button>
      </main>
    )
  }
  return <SignedIn principal={me.data} />
}

function SignIn({ expired, onSignedIn }: { expired: boolean; onSignedIn: () => Promise<void> }) {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const [missing, setMissing] = useState<{ username?: string; password?: string }>({})

  const submit = async (event: FormEvent) => {
    event.preventDefault()
    const empty = {
      ...(username.trim() ? {} : { username: 'Enter your username.' }),
      ...(password ? {} : { password: 'Enter your password.' }),
    }
    setMissing(empty)
    if (Object.keys(empty).length > 0) return
    setBusy(true)
    setError(null)
    try {
      await signIn(username, password)
      setPassword('')
      await onSignedIn()
    } catch (failure) {
      setError(failure)
    } finally {
      setBusy(false)
    }
  }

  const problem = error ? problemOf(error) : null
  return (
    <main className="center signin">
      <h1>tokend console</h1>
      {expired && (
        <p className="notice" role="status">
          Your session has ended. Sign in again to continue where you were.
        </p>
      )}
      <form onSubmit={submit} noValidate aria-label="Sign in">
        <Field label="Username" error={missing.username}>
          {(props) => (
            <input
              {...props}
              name="username"
              autoComplete="username"
              value={username}
              onChange={(e) => setUsername(e.target.value)}
            />
          )}
        </Field>
        <Field label="Password" error={missing.password}>
          {(props) => (
            <input
              {...props}
              name="password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        {problem &&
          (problem.kind === 'unauthorized' ? (
            <div className="notice notice-forbidden" role="alert">
              Unknown username or wrong password.
            </div>
          ) : (
            <ProblemNotice error={error} what="this account" />
          ))}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}

const PAGES = [
  { path: '/keys', label: 'Keys', who: 'all' },
  { path: '/audit', label: 'Audit', who: 'admin' },
  { path: '/users', label: 'Users', who: 'admin' },
  { path: '/directs', label: 'Direct links', who: 'admin' },
  { path: '/account', label: 'Account', who: 'all' },
  { path: '/accounts', label: 'Accounts', who: 'operator' },
] as const

function SignedIn({ principal }: { principal: Principal }) {
  const { path, params } = useLocation()
  const queryClient = useQueryClient()
  const chosen = params.get('account')
  const accountId = chosen ?? principal.accountId
  const href = (to: string) =>
    chosen && chosen !== principal.accountId ? `${to}?account=${encodeURIComponent(chosen)}` : to
  const session: Session = { principal, accountId, canWrite: principal.role === 'admin', href }
  const [signingOut, setSigningOut] = useState(false)
  const current = path === '/' ? '/keys' : path

  useEffect(() => {
    if (path === '/') navigate(href('/keys'), { replace: true })
  })

  const out = async () => {
    setSigningOut(true)
    try {
      await signOut()
    } finally {
      queryClient.clear()
      navigate('/', { replace: true })
      await queryClient.resetQueries()
      setSigningOut(false)
    }
  }

  const visible = PAGES.filter(
    (page) =>
      page.who === 'all' ||
      (page.who === 'admin' && principal.role === 'admin') ||
      (page.who === 'operator' && principal.operator),
  )
  const who = principal.kind === 'session' ? principal.username : principal.name
  return (
    <SessionContext.Provider value={session}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">tokend</span>
        <nav aria-label="Console">
          <ul>
            {visible.map((page) => (
              <li key={page.path}>
                <Link to={href(page.path)} aria-current={current === page.path ? 'page' : undefined}>
                  {page.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          {principal.operator && <AccountSwitcher accountId={accountId} own={principal.accountId} path={current} />}
          <span>
            {who} <span className="badge">{principal.role}</span>
          </span>
          <button type="button" onClick={out} disabled={signingOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={current} />
      </main>
    </SessionContext.Provider>
  )
}

function AccountSwitcher({ accountId, own, path }: { accountId: string; own: string; path: string }) {
  const trpc = useTRPC()
  const accounts = useQuery(trpc.account.list.queryOptions({ limit: 100 }))
  const items = accounts.data?.items ?? []
  const known = items.some((account) => account.id === accountId)
  const id = useId()
  return (
    <div className="switcher">
      <label htmlFor={id}>Account</label>
      <select
        id={id}
        value={accountId}
        onChange={(e) =>
          navigate(e.target.value === own ? path : `${path}?account=${encodeURIComponent(e.target.value)}`)
        }
      >
        {!known && <option value={accountId}>{accountId}</option>}
        {items.map((account) => (
          <option key={account.id} value={account.id}>
            {account.name}
            {account.operator ? ' (operator)' : ''}
            {account.status === 'suspended' ? ' (suspended)' : ''}
          </option>
        ))}
      </select>
    </div>
  )
}

function Page({ path }: { path: string }) {
  switch (path) {
    case '/keys':
      return <KeysPage />
    case '/audit':
      return <AuditPage />
    case '/users':
      return <UsersPage />
    case '/directs':
      return <DirectsPage />
    case '/account':
      return <AccountPage />
    case '/accounts':
      return <AccountsPage />
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            There is no such page. <Link to="/keys">Go to the keys</Link>.
          </p>
        </>
      )
  }
}
