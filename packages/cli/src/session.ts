import { readFileSync } from 'node:fs'
import type { AppRouter } from '@tokend/auth'
import { createTokendClient } from '@tokend/client'
import type { TRPCClient } from '@trpc/client'
import type { Command } from 'commander'
import { CliError, EXIT } from './errors.ts'
import { readProfile } from './profile.ts'

export const DEFAULT_URL = 'http://localhost:3000'

/** The options every command takes (set on the program, accepted before or after the command). */
export interface Globals {
  url?: string
  keyFile?: string
  json?: boolean
}

/** What `run` hands every command: the environment, and where a command sets a non-zero exit code. */
export interface Context {
  env: NodeJS.ProcessEnv
  exitCode: number
  /** The URL in use, once a command has worked it out (for error messages). */
  url?: string
}

/** Long enough for a slow list; a hung tokend still ends in an error rather than a hang. */
const TIMEOUT_MS = 30_000

/**
 * What an action needs: the typed tRPC client, made on first use (so `--help` and usage
 * errors need no key), and the output mode.
 */
export class Session {
  readonly globals: Globals & { url: string }
  #trpc: TRPCClient<AppRouter> | undefined

  constructor(
    command: Command,
    private readonly context: Context,
  ) {
    const globals = command.optsWithGlobals<Globals>()
    // --url or TOKEND_URL, else what tokend login saved, else the local default.
    this.#profile = readProfile(context.env)
    this.globals = { ...globals, url: globals.url ?? this.#profile.url ?? DEFAULT_URL }
    context.url = this.globals.url
  }

  readonly #profile: { url?: string; key?: string }

  get json(): boolean {
    return this.globals.json === true
  }

  get trpc(): TRPCClient<AppRouter> {
    if (this.#trpc) return this.#trpc
    const serviceKey = readKey(this.globals.keyFile, this.context.env.TOKEND_KEY, this.#profile.key)
    try {
      this.#trpc = createTokendClient({ url: this.globals.url, serviceKey, timeoutMs: TIMEOUT_MS, retries: 0 }).trpc
    } catch (error) {
      // The client refuses a key that is not one at all (a typo, a truncated paste).
      const message = (error as Error).message.replace(/^createTokendClient: serviceKey/, 'your key')
      throw new CliError(
        `${message}: check TOKEND_KEY, --key-file or the key saved by tokend login`,
        EXIT.auth,
        'invalid_token',
      )
    }
    return this.#trpc
  }

  /** Prints the procedure's raw output with `--json`, else the human rendering. */
  print<T>(value: T, human: (value: T) => string): void {
    process.stdout.write(this.json ? `${JSON.stringify(value, null, 2)}\n` : human(value))
  }

  /** Ends the run with `code` once the output is written (e.g. 1 for a denied verify). */
  exitWith(code: number): void {
    this.context.exitCode = code
  }

  /** Tells a person there is another page; scripts see `nextCursor` in the JSON. */
  more(page: { nextCursor: string | null }): void {
    if (page.nextCursor && !this.json) this.note(`more: add --cursor ${page.nextCursor}, or --all for everything`)
  }

  /** Hints and warnings: stderr, so stdout stays the result alone. */
  note(message: string): void {
    process.stderr.write(`tokend: ${message}\n`)
  }
}

/**
 * The caller's key: from `--key-file` / `TOKEND_KEY_FILE` when given (a named file is the
 * more deliberate choice), else `TOKEND_KEY`. There is no `--key` flag on purpose: a key
 * on the command line ends up in shell history and `ps`. No message ever contains the key.
 */
export function readKey(keyFile: string | undefined, fromEnv: string | undefined, saved?: string): string {
  let key = fromEnv?.trim() || saved
  let source = fromEnv?.trim() ? 'TOKEND_KEY' : 'the key saved by tokend login'
  if (keyFile) {
    source = keyFile
    try {
      key = readFileSync(keyFile, 'utf8').trim()
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable'
      throw new CliError(`cannot read the key file ${keyFile} (${code})`, EXIT.auth)
    }
  }
  if (!key) {
    const why = keyFile ? `the key file ${keyFile} is empty` : 'no key'
    throw new CliError(
      `${why}: set TOKEND_KEY, give --key-file <path> (or TOKEND_KEY_FILE), or run tokend login`,
      EXIT.auth,
    )
  }
  // A header value with whitespace would make fetch fail with a message quoting it.
  if (/\s/.test(key)) throw new CliError(`${source} does not hold a single key (it contains whitespace)`, EXIT.auth)
  return key
}
