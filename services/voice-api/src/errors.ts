/** An answer other than success, with a stable snake_case code: `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const notFound = () => new HttpError(404, 'not_found', 'no such recording')
export const forbidden = () => new HttpError(403, 'forbidden', 'this recording belongs to another account')
