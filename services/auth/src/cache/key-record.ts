import type { Environment } from '@tokend/keys'
import type { Role } from '../principal.ts'
import type { KeyControls } from '../tokens/key-controls.ts'

const LIVE = 1
const ADMIN = 2
const DISABLED = 4
const REVOKED = 8
const ACCOUNT_ACTIVE = 16
const OPERATOR = 32
/** The key is bound to networks (allowedCidrs): only these keys pay for the address check. */
const HAS_CIDRS = 64
/** The key has usage credits: verify spends them (credits/). Keys without pay nothing for this. */
const METERED = 128

export interface KeyFields {
  id: string
  accountId: string
  environment: Environment
  role: Role
  scopes: readonly string[]
  name: string
  /** Epoch milliseconds, or null for a key that never expires. */
  expiresAt: number | null
  disabled: boolean
  revoked: boolean
  accountActive: boolean
  operator: boolean
  /** Meta and networks (SPEC §14); null, as for most keys, when it has neither. */
  controls?: KeyControls | null
  /** The key has usage credits (absent: none). */
  metered?: boolean | undefined
}

// Keys share accounts and scope lists; cached entries share the strings and arrays.
const MAX_SHARED = 100_000
const accountIds = new Map<string, string>()
const scopeLists = new Map<string, readonly string[]>()

function shared<T>(pool: Map<string, T>, key: string, value: T): T {
  const known = pool.get(key)
  if (known !== undefined) return known
  if (pool.size >= MAX_SHARED) pool.clear()
  pool.set(key, value)
  return value
}

/**
 * What verification needs to know about one key, as the cache holds it: seven fields,
 * the flags packed into one number, account ids and scope lists shared between
 * entries (SPEC §11 P9 budgets 400 bytes an entry). Read it like `KeyFields`.
 */
export class KeyRecord {
  private constructor(
    readonly id: string,
    readonly accountId: string,
    readonly name: string,
    readonly scopes: readonly string[],
    readonly expiresAt: number | null,
    private readonly flags: number,
    readonly controls: KeyControls | null,
  ) {}

  static from(fields: KeyFields): KeyRecord {
    const flags =
      (fields.environment === 'live' ? LIVE : 0) |
      (fields.role === 'admin' ? ADMIN : 0) |
      (fields.disabled ? DISABLED : 0) |
      (fields.revoked ? REVOKED : 0) |
      (fields.accountActive ? ACCOUNT_ACTIVE : 0) |
      (fields.operator ? OPERATOR : 0) |
      (fields.controls?.allowedCidrs ? HAS_CIDRS : 0) |
      (fields.metered ? METERED : 0)
    const scopes = shared(scopeLists, fields.scopes.join(' '), Object.freeze([...fields.scopes]))
    const accountId = shared(accountIds, fields.accountId, fields.accountId)
    return new KeyRecord(fields.id, accountId, fields.name, scopes, fields.expiresAt, flags, fields.controls ?? null)
  }

  get environment(): Environment {
    return this.flags & LIVE ? 'live' : 'test'
  }
  get role(): Role {
    return this.flags & ADMIN ? 'admin' : 'manager'
  }
  get disabled(): boolean {
    return (this.flags & DISABLED) !== 0
  }
  get revoked(): boolean {
    return (this.flags & REVOKED) !== 0
  }
  get accountActive(): boolean {
    return (this.flags & ACCOUNT_ACTIVE) !== 0
  }
  get operator(): boolean {
    return (this.flags & OPERATOR) !== 0
  }
  get hasCidrs(): boolean {
    return (this.flags & HAS_CIDRS) !== 0
  }
  get metered(): boolean {
    return (this.flags & METERED) !== 0
  }
}
