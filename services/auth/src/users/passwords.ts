import { randomBytes } from 'node:crypto'
import { argon2id, hash, verify } from 'argon2'
import { RateLimitedError } from '../errors.ts'

export interface PasswordOptions {
  /** argon2id memory in KiB; 19 456 (19 MiB) is OWASP's minimum. */
  memoryKib: number
  timeCost: number
  /** Hashes running at once; the rest wait in a short queue. */
  concurrency: number
}

/** Waiting hashes beyond this are refused with 429 instead of queueing without end. */
const MAX_WAITING = 64

/**
 * argon2id hashing with bounded concurrency. Each hash takes a libuv thread and ~19 MiB
 * for tens of milliseconds; capping how many run at once keeps a burst of sign-ins from
 * taking every core (and the thread pool) away from the verify path.
 */
export class PasswordHasher {
  readonly #options: PasswordOptions
  #running = 0
  readonly #waiting: Array<() => void> = []
  #dummy: Promise<string> | undefined

  constructor(options: PasswordOptions) {
    this.#options = options
  }

  /** Hashes running now, and waiting for a slot (for metrics and tests). */
  get load(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length }
  }

  hash(password: string): Promise<string> {
    return this.#limit(() =>
      hash(normalize(password), {
        type: argon2id,
        memoryCost: this.#options.memoryKib,
        timeCost: this.#options.timeCost,
        parallelism: 1,
      }),
    )
  }

  /**
   * Checks a password against a stored hash. Without a hash (unknown user) it checks
   * against a dummy hash of the same parameters, so both answers take the same time.
   */
  async verify(stored: string | null, password: string): Promise<boolean> {
    const digest = stored ?? (await this.warm())
    const matches = await this.#limit(() => verify(digest, normalize(password)))
    return stored !== null && matches
  }

  /** Computes the dummy hash now rather than during the first unknown-user sign-in. */
  warm(): Promise<string> {
    this.#dummy ??= this.hash(randomBytes(24).toString('base64url'))
    return this.#dummy
  }

  async #limit<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#options.concurrency) {
      if (this.#waiting.length >= MAX_WAITING) {
        throw new RateLimitedError('too many sign-ins at once; retry in a moment', 1_000)
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else {
      this.#running++
    }
    try {
      return await work()
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#running--
    }
  }
}

/** The same password typed on another keyboard or OS must still match (NIST SP 800-63B). */
function normalize(password: string): string {
  return password.normalize('NFKC')
}
