import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { argon2id } from 'argon2'
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
 * The hashing process's whole program. It lowers its own priority before argon2 starts
 * its threads (they inherit it), so on a busy replica the kernel runs verification first
 * and sign-ins wait: hashing may slow sign-ins down, never the verify path. Plain
 * JavaScript for `node -e`, so it runs the same from source and from the bundle.
 */
const HASHER_PROGRAM = `
require('node:os').setPriority(19)
const argon2 = require(process.argv[1])
process.on('message', async ({ id, op, password, digest, options }) => {
  try {
    const result = op === 'hash' ? await argon2.hash(password, options) : await argon2.verify(digest, password)
    process.send({ id, result })
  } catch (error) {
    process.send({ id, error: String(error && error.message) })
  }
})
process.on('disconnect', () => process.exit(0))
`
const ARGON2_PATH = createRequire(import.meta.url).resolve('argon2')

type Request = { op: 'hash'; password: string; options: object } | { op: 'verify'; digest: string; password: string }
type Reply = { id: number; result?: string | boolean; error?: string }
type Pending = { child: ChildProcess; resolve: (value: string | boolean) => void; reject: (error: Error) => void }

/**
 * argon2id hashing, off the verify path twice over: in a child process at the lowest
 * CPU priority, and at most `concurrency` hashes at once (each takes ~19 MiB and tens
 * of milliseconds), so a burst of sign-ins queues instead of taking every core.
 */
export class PasswordHasher {
  readonly #options: PasswordOptions
  #running = 0
  readonly #waiting: Array<() => void> = []
  #dummy: Promise<string> | undefined
  #child: ChildProcess | undefined
  #nextId = 0
  readonly #pending = new Map<number, Pending>()

  constructor(options: PasswordOptions) {
    this.#options = options
  }

  /** Hashes running now, and waiting for a slot (for metrics and tests). */
  get load(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length }
  }

  /** The hashing process's id, once it runs. */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  async hash(password: string): Promise<string> {
    const options = {
      type: argon2id,
      memoryCost: this.#options.memoryKib,
      timeCost: this.#options.timeCost,
      parallelism: 1,
    }
    return (await this.#limit(() => this.#send({ op: 'hash', password: normalize(password), options }))) as string
  }

  /**
   * Checks a password against a stored hash. Without a hash (unknown user) it checks
   * against a dummy hash of the same parameters, so both answers take the same time.
   */
  async verify(stored: string | null, password: string): Promise<boolean> {
    const digest = stored ?? (await this.warm())
    const matches = await this.#limit(() => this.#send({ op: 'verify', digest, password: normalize(password) }))
    return stored !== null && matches === true
  }

  /** Starts the hashing process and computes the dummy hash now, not during a sign-in. */
  warm(): Promise<string> {
    this.#dummy ??= this.hash(randomBytes(24).toString('base64url'))
    return this.#dummy
  }

  /** Ends the hashing process; a later hash starts a new one. */
  stop(): void {
    this.#child?.kill()
  }

  #send(request: Request): Promise<string | boolean> {
    const child = this.#child?.connected ? this.#child : this.#spawn()
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { child, resolve, reject })
      // Keep tokend alive while a hash is owed to it, and only then.
      child.channel?.ref()
      child.send({ id, ...request })
    })
  }

  #spawn(): ChildProcess {
    const child = spawn(process.execPath, ['-e', HASHER_PROGRAM, ARGON2_PATH], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id)
      this.#pending.delete(reply.id)
      if (![...this.#pending.values()].some((other) => other.child === child)) child.channel?.unref()
      if (reply.error !== undefined) pending?.reject(new Error(`password hashing failed: ${reply.error}`))
      else pending?.resolve(reply.result as string | boolean)
    })
    const gone = (why: string) => {
      if (this.#child === child) this.#child = undefined
      for (const [id, pending] of this.#pending) {
        if (pending.child !== child) continue
        this.#pending.delete(id)
        pending.reject(new Error(`the password hasher ${why}`))
      }
    }
    child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`))
    child.on('error', (error) => gone(`failed: ${error.message}`))
    // Idle, it never keeps tokend running; it exits by itself when tokend goes away.
    child.unref()
    child.channel?.unref()
    this.#child = child
    return child
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
