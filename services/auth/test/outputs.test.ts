import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getAccount, listAccounts } from '../src/accounts/account.service.ts'
import { listAudit } from '../src/audit/audit.service.ts'
import { createContextInner } from '../src/context.ts'
import { listDirects } from '../src/directs/direct.service.ts'
import type { Principal } from '../src/principal.ts'
import { actorOf } from '../src/principal.ts'
import { listSigningKeys } from '../src/sessions/session.service.ts'
import { getToken, listTokens } from '../src/tokens/token.service.ts'
import { listUsers } from '../src/users/user.service.ts'
import { createUser, issue, startTestApp, type TestApp } from './harness.ts'

/**
 * tRPC answers with what a procedure's `.output()` schema parsed, not with what the
 * service returned: a schema that listed fields in another order, or left one out,
 * would change the bytes on the wire. Each read here is made both ways — the service
 * function itself, and the procedure over HTTP — and must serialize identically.
 */
let t: TestApp
let principal: Principal
let tokenId: string

beforeAll(async () => {
  // lastUsedAt would change between the two reads of a listing.
  t = await startTestApp({ TOKEND_TRACK_LAST_USED: 'false' })
  const meta = { requestId: null, address: null, userAgent: null }
  principal = (await createContextInner(t.app.deps, meta, `Bearer ${t.bootstrapKey}`).authenticate()) as Principal
  const key = await issue(t.operator, { detail: 'with a detail', scopes: ['recordings:read'], expiresIn: '90d' })
  tokenId = key.id
  await t.operator.mutation('token.setDisabled', { id: key.id, disabled: true })
  await issue(t.operator, { environment: 'live', role: 'admin' })
  await createUser(t.operator, { role: 'admin' })
  await t.operator.mutation('direct.create', { resourceType: 'ai', resourceId: 'bot-1' })
})

afterAll(() => t?.stop())

async function wire(path: string, input?: unknown): Promise<string> {
  const search = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`
  const res = await fetch(`${t.url}/trpc/${path}${search}`, { headers: { authorization: `Bearer ${t.bootstrapKey}` } })
  expect(res.status).toBe(200)
  return await res.text()
}

function envelope(data: unknown): string {
  return `{"result":{"data":${JSON.stringify(data)}}}`
}

describe('output schemas', () => {
  it('keep every field and its order, byte for byte', async () => {
    const tokens = {
      deps: t.app.deps,
      principal,
      actor: actorOf(principal, { requestId: null, address: null, userAgent: null }),
    }
    const deps = t.app.deps
    const page = { limit: 50 }
    const cases: Array<[string, unknown, unknown]> = [
      ['token.get', { id: tokenId }, await getToken(tokens, tokenId)],
      ['token.list', undefined, await listTokens(tokens, { status: 'all', limit: 50 })],
      ['account.list', undefined, await listAccounts(deps, principal, page)],
      ['account.get', undefined, await getAccount(deps, principal, {})],
      ['user.list', undefined, await listUsers({ ...tokens }, page)],
      ['direct.list', undefined, await listDirects({ ...tokens }, page)],
      ['audit.list', undefined, await listAudit(deps, principal, page)],
      ['signingKey.list', undefined, await listSigningKeys(deps, principal)],
      ['me', undefined, principal],
    ]
    for (const [path, input, direct] of cases) {
      expect(await wire(path, input), path).toBe(envelope(direct))
    }
  })
})
