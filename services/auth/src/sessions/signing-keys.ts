import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { Db } from '../db/database.ts'
import type { SigningKeyRow } from '../db/schema.ts'
import { newId } from '../ids.ts'

export const JWT_ALGORITHM = 'EdDSA'

/**
 * The longest any token tokend signs lives (a session: 7 days). A retired key keeps
 * verifying this long after its retirement, so no token it signed stops working early.
 */
export const MAX_TOKEN_LIFETIME_MS = 7 * 86_400_000
// A replica may sign with a key a moment after another retired it, until it hears of it.
const RETIREMENT_GRACE_MS = 60_000
const RETAIN_MS = MAX_TOKEN_LIFETIME_MS + RETIREMENT_GRACE_MS
/** How often an unknown `kid` may send this replica to the database. */
const RELOAD_INTERVAL_MS = 1_000

interface VerifyingKey {
  key: CryptoKey
  publicJwk: JWK
  retiredAt: number | null
}

/**
 * This replica's view of the signing keys in Postgres: the newest active one signs,
 * every key still within its retention verifies. Rotation on any replica announces a
 * `signing_keys` change, and each replica reloads; a token with a `kid` this replica
 * has not seen yet also triggers a reload, at most once a second.
 */
export class SigningKeys {
  readonly #db: Db
  readonly #logger: Logger
  #verifying = new Map<string, VerifyingKey>()
  #signing: { kid: string; key: CryptoKey } | undefined
  #loading: Promise<void> | undefined
  #loadedAt = 0

  constructor(db: Db, logger: Logger) {
    this.#db = db
    this.#logger = logger
  }

  /** Loads the keys; throws when it cannot (start-up needs them). */
  async load(): Promise<void> {
    this.#loadedAt = Date.now()
    const rows = await this.#db
      .selectFrom('signing_keys')
      .selectAll()
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', new Date(Date.now() - RETAIN_MS))]))
      .orderBy('id')
      .execute()
    const verifying = new Map<string, VerifyingKey>()
    for (const row of rows) {
      verifying.set(row.id, {
        key: (await importJWK(row.public_jwk, JWT_ALGORITHM)) as CryptoKey,
        publicJwk: publicJwk(row),
        retiredAt: row.retired_at?.getTime() ?? null,
      })
    }
    const active = rows.filter((row) => row.retired_at === null).at(-1)
    if (!active) throw new Error('no active signing key')
    if (this.#signing?.kid !== active.id) {
      this.#signing = { kid: active.id, key: (await importJWK(active.private_jwk, JWT_ALGORITHM)) as CryptoKey }
    }
    this.#verifying = verifying
  }

  /** Reloads now (one load at a time); a failure is logged and the known keys stay. */
  refresh(): Promise<void> {
    this.#loading ??= this.load()
      .catch((error) => this.#logger.warn({ err: error }, 'could not reload signing keys'))
      .finally(() => {
        this.#loading = undefined
      })
    return this.#loading
  }

  /** The key new tokens are signed with. */
  get signing(): { kid: string; key: CryptoKey } {
    if (!this.#signing) throw new Error('signing keys are not loaded')
    return this.#signing
  }

  /** The public key for `kid`, or null when there is none (or it is past its retention). */
  async verifying(kid: string): Promise<CryptoKey | null> {
    if (!this.#verifying.has(kid) && Date.now() - this.#loadedAt >= RELOAD_INTERVAL_MS) await this.refresh()
    const found = this.#verifying.get(kid)
    if (!found || (found.retiredAt !== null && found.retiredAt + RETAIN_MS <= Date.now())) return null
    return found.key
  }

  /** The JSON Web Key Set served at /.well-known/jwks.json: public halves only. */
  jwks(): { keys: JWK[] } {
    const now = Date.now()
    return {
      keys: [...this.#verifying.values()]
        .filter((key) => key.retiredAt === null || key.retiredAt + RETAIN_MS > now)
        .map((key) => key.publicJwk),
    }
  }
}

/** On an empty table (first start): creates the first signing key. Runs under the start-up lock. */
export async function ensureSigningKey(db: Db): Promise<void> {
  const active = await db.selectFrom('signing_keys').select('id').where('retired_at', 'is', null).executeTakeFirst()
  if (!active) await insertSigningKey(db)
}

/**
 * Makes a new key the signing one and retires the others; they keep verifying for
 * their retention. Keys past it are deleted, private halves included.
 */
export async function rotateSigningKeys(db: Db): Promise<SigningKeyRow> {
  // Concurrent rotations take turns; the later one retires the earlier one's key.
  await db.selectFrom('signing_keys').select('id').where('retired_at', 'is', null).forUpdate().execute()
  const created = await insertSigningKey(db)
  await db
    .updateTable('signing_keys')
    .set({ retired_at: sql`now()` })
    .where('retired_at', 'is', null)
    .where('id', '<>', created.id)
    .execute()
  await db
    .deleteFrom('signing_keys')
    .where('retired_at', '<', new Date(Date.now() - RETAIN_MS))
    .execute()
  return created
}

async function insertSigningKey(db: Db): Promise<SigningKeyRow> {
  const { publicKey, privateKey } = await generateKeyPair(JWT_ALGORITHM, { crv: 'Ed25519', extractable: true })
  return db
    .insertInto('signing_keys')
    .values({
      id: newId('sk'),
      public_jwk: JSON.stringify(await exportJWK(publicKey)),
      private_jwk: JSON.stringify(await exportJWK(privateKey)),
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

function publicJwk(row: SigningKeyRow): JWK {
  const { kty, crv, x } = row.public_jwk
  return { kty, crv, x, kid: row.id, alg: JWT_ALGORITHM, use: 'sig' }
}
