export interface Reply<T = unknown> {
  status: number
  headers: Headers
  body: T
}

/** A raw HTTP caller for tRPC procedures: exactly what a client in any language sends. */
export class Caller {
  constructor(
    readonly url: string,
    readonly key?: string,
  ) {}

  as(key: string | undefined): Caller {
    return new Caller(this.url, key)
  }

  mutation<T = any>(path: string, input?: unknown): Promise<Reply<T>> {
    return this.send(`/trpc/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: input === undefined ? undefined : JSON.stringify(input),
    })
  }

  query<T = any>(path: string, input?: unknown): Promise<Reply<T>> {
    const search = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`
    return this.send(`/trpc/${path}${search}`, { method: 'GET' })
  }

  async send<T>(path: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...init.headers }
    if (this.key !== undefined) headers.authorization = `Bearer ${this.key}`
    const response = await fetch(this.url + path, { ...init, headers })
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined }
  }
}
