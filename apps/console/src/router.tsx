import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from 'react'

/** A very small router over the History API: the console has a handful of pages under /console. */
export const BASE = '/console'

function subscribe(onChange: () => void) {
  window.addEventListener('popstate', onChange)
  return () => window.removeEventListener('popstate', onChange)
}

function snapshot() {
  return window.location.pathname + window.location.search
}

export function useLocation(): { path: string; params: URLSearchParams } {
  const href = useSyncExternalStore(subscribe, snapshot)
  const url = new URL(href, window.location.origin)
  const path = url.pathname.startsWith(BASE) ? url.pathname.slice(BASE.length).replace(/\/$/, '') || '/' : '/'
  return { path, params: url.searchParams }
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const href = BASE + to
  if (options.replace) window.history.replaceState(null, '', href)
  else window.history.pushState(null, '', href)
  window.dispatchEvent(new PopStateEvent('popstate'))
}

/** A link within the console: a real <a href> (open in new tab works), navigated in place on a plain click. */
export function Link({ to, ...props }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    props.onClick?.(event)
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return
    event.preventDefault()
    navigate(to)
  }
  return <a {...props} href={BASE + to} onClick={onClick} />
}
