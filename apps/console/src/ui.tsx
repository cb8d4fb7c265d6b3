import { type ReactNode, useId, useLayoutEffect, useRef, useState } from 'react'
import { type Problem, problemOf } from './trpc.ts'

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>
}

const TITLES: Record<Problem['kind'], string> = {
  unauthorized: 'Signed out',
  forbidden: 'Not allowed',
  not_found: 'Not found',
  rate_limited: 'Too many requests',
  unreachable: 'tokend is unreachable',
  unavailable: 'tokend is unavailable',
  invalid: 'Check the form',
  other: 'Something went wrong',
}

/** One place that says what went wrong, whatever the call. */
export function ProblemNotice({ error, what }: { error: unknown; what?: string }) {
  const problem = problemOf(error)
  const text =
    problem.kind === 'forbidden'
      ? `You do not have access to ${what ?? 'this'}: ${problem.message}`
      : problem.kind === 'rate_limited' && problem.retryAfterMs
        ? `${problem.message} (try again in ${Math.ceil(problem.retryAfterMs / 1000)} s)`
        : problem.kind === 'unavailable'
          ? `${problem.message}. tokend cannot reach its database; retrying…`
          : problem.message
  return (
    <div className={`notice notice-${problem.kind}`} role="alert" data-problem={problem.kind}>
      <strong>{TITLES[problem.kind]}</strong> <span>{text}</span>
    </div>
  )
}

/** A modal dialog (the native <dialog>: focus moves in and stays, Escape closes unless `locked`). */
export function Dialog({
  title,
  onClose,
  locked = false,
  children,
}: {
  title: string
  onClose: () => void
  locked?: boolean
  children: ReactNode
}) {
  const ref = useRef<HTMLDialogElement>(null)
  const id = useId()
  // Layout effect: closed before React removes it, so focus goes back where it was.
  useLayoutEffect(() => {
    const dialog = ref.current
    const previous = document.activeElement
    if (dialog && !dialog.open) dialog.showModal()
    return () => {
      dialog?.close()
      if (previous instanceof HTMLElement && previous.isConnected) previous.focus()
    }
  }, [])
  return (
    <dialog
      ref={ref}
      aria-labelledby={id}
      onCancel={(event) => {
        event.preventDefault()
        if (!locked) onClose()
      }}
    >
      <h2 id={id}>{title}</h2>
      {children}
    </dialog>
  )
}

/** A labelled form control with its inline error. */
export function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string
  error?: string | undefined
  hint?: string
  children: (props: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => ReactNode
}) {
  const id = useId()
  const describedBy = [error ? `${id}-error` : '', hint ? `${id}-hint` : ''].filter(Boolean).join(' ')
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-invalid': Boolean(error), ...(describedBy ? { 'aria-describedby': describedBy } : {}) })}
      {hint && (
        <small id={`${id}-hint`} className="muted">
          {hint}
        </small>
      )}
      {error && (
        <small id={`${id}-error`} className="field-error">
          {error}
        </small>
      )}
    </div>
  )
}

/** Field errors from a failed call (`issues`), keyed by input path. */
export function fieldErrors(error: unknown): Record<string, string> {
  const errors: Record<string, string> = {}
  for (const issue of problemOf(error).issues ?? []) errors[issue.path || '_'] ??= issue.message
  return errors
}

/** A secret shown once: a read-only field, a Copy button and an "I have stored it" confirmation. */
export function ShownOnce({ label, secret, onDone }: { label: string; secret: string; onDone: () => void }) {
  const [stored, setStored] = useState(false)
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no')
  const input = useRef<HTMLInputElement>(null)
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret)
      setCopied('yes')
    } catch {
      input.current?.select()
      setCopied('failed')
    }
  }
  return (
    <div className="shown-once">
      <p className="warning" role="note">
        This is the only time the {label} is shown. Copy it now and keep it in a secret manager.
      </p>
      <Field label={label}>
        {(props) => (
          <div className="copy-row">
            <input {...props} ref={input} readOnly value={secret} className="mono" onFocus={(e) => e.target.select()} />
            <button type="button" onClick={copy}>
              Copy
            </button>
          </div>
        )}
      </Field>
      <p className="muted" aria-live="polite">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'failed' ? 'Selected: press Ctrl+C to copy.' : ''}
      </p>
      <label className="check">
        <input type="checkbox" checked={stored} onChange={(e) => setStored(e.target.checked)} /> I have stored it
      </label>
      <div className="actions">
        <button type="button" className="primary" disabled={!stored} onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  )
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })

export function When({ at, never = '—', withTime = false }: { at: string | null; never?: string; withTime?: boolean }) {
  if (!at) return <span className="muted">{never}</span>
  const date = new Date(at)
  return (
    <time dateTime={at} title={date.toISOString()}>
      {(withTime ? dateTime : dateOnly).format(date)}
    </time>
  )
}

/** Previous / next over cursor pages: `nextCursor` is the listing's, null on its last page. */
export function Pager({ label, pages, nextCursor }: { label: string; pages: CursorPages; nextCursor: string | null }) {
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={pages.previous} disabled={pages.page === 0}>
        Previous
      </button>
      <span>Page {pages.page + 1}</span>
      <button type="button" onClick={() => pages.next(nextCursor)} disabled={!nextCursor}>
        Next
      </button>
    </nav>
  )
}

type CursorPages = ReturnType<typeof useCursorPages>

/** A stack of cursors for cursor-paged listings. */
export function useCursorPages() {
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined])
  return {
    cursor: cursors.at(-1),
    page: cursors.length - 1,
    next: (cursor: string | null) => cursor && setCursors((stack) => [...stack, cursor]),
    previous: () => setCursors((stack) => (stack.length > 1 ? stack.slice(0, -1) : stack)),
    reset: () => setCursors([undefined]),
  }
}

/** A table that scrolls sideways on narrow screens; keyboard users can focus it to scroll. */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard (axe scrollable-region-focusable)
    <section className="table-wrap" aria-label={label} tabIndex={0}>
      {children}
    </section>
  )
}
