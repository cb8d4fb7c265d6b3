import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { generateKey } from '@tokend/keys'
import { freePort, query, type RunningTokend, repoRoot, startTokend } from '@tokend/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'

/**
 * The `tokend` command line as a person or a script runs it: a real child process
 * (packages/cli/dist/tokend.js, built by `pnpm test`) against a real tokend process.
 */
// Each run is a process of its own; a test makes a dozen or more.
vi.setConfig({ testTimeout: 120_000 })

let tokend: RunningTokend
let dir: string
/** The operator admin key (bootstrap), the caller unless a test says otherwise. */
let admin: string

const BIN = join(repoRoot, 'packages/cli/dist/tokend.js')
const WARNING = 'it will not be shown again'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

interface Options {
  /** The caller's key in TOKEND_KEY; null for none. Default: the operator admin key. */
  key?: string | null
  env?: Record<string, string>
  stdin?: string
  /** Run something else (e.g. pnpm) instead of the bin. */
  command?: string[]
}

/** Runs the CLI; every run is also checked for what must never happen. */
async function cli(args: string[], options: Options = {}): Promise<Run> {
  const key = options.key === undefined ? admin : options.key
  const [command, ...prefix] = options.command ?? [process.execPath, BIN]
  // An empty value in `options.env` removes the variable.
  const child = spawn(command as string, [...prefix, ...args], {
    cwd: repoRoot,
    env: Object.fromEntries(
      Object.entries({
        PATH: process.env.PATH ?? '',
        // Never the developer's own ~/.config/tokend.
        HOME: dir,
        TOKEND_URL: tokend.url,
        ...(key === null ? {} : { TOKEND_KEY: key }),
        ...options.env,
      }).filter(([, value]) => value !== ''),
    ),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  child.stdin.end(options.stdin ?? '')
  const code = await new Promise<number | null>((resolve) => child.on('close', (exit) => resolve(exit)))
  const run = { code, stdout, stderr }
  if (key) expect(stdout + stderr, 'the caller key is never printed').not.toContain(key)
  expect(stderr, 'no stack traces').not.toMatch(/^\s+at .+:\d+/m)
  return run
}

/** The one JSON document on stdout. */
function json(run: Run): any {
  expect(run.stderr.includes('error'), run.stderr).toBe(false)
  return JSON.parse(run.stdout)
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1
}

async function issue(args: string[] = [], options: Options = {}) {
  const run = await cli(['keys', 'issue', '--name', 'k', '--env', 'test', ...args, '--json'], options)
  expect(run.code, run.stderr).toBe(0)
  return json(run) as { token: string; id: string; accountId: string }
}

beforeAll(async () => {
  tokend = await startTokend({ TOKEND_KEY_CREATIONS_PER_MINUTE: '1000', TOKEND_MAX_ACTIVE_KEYS: '1000' })
  admin = tokend.bootstrapKey
  dir = await mkdtemp(join(tmpdir(), 'tokend-cli-'))
})

afterAll(async () => {
  await tokend?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('keys', () => {
  it('issues, lists, gets, disables, enables, rotates and revokes a key, verifying along the way (--json)', async () => {
    const run = await cli([
      'keys',
      'issue',
      '--name',
      'ci-deploy',
      '--env',
      'test',
      '--scope',
      'recordings:read',
      '--scope',
      'recordings:write',
      '--expires-in',
      '90d',
      '--detail',
      'the CI pipeline',
      '--json',
    ])
    expect(run.code).toBe(0)
    const issued = json(run)
    expect(issued).toMatchObject({
      token: expect.stringMatching(/^tk_test_/),
      id: expect.stringMatching(/^tok_/),
      name: 'ci-deploy',
      environment: 'test',
      role: 'manager',
      scopes: ['recordings:read', 'recordings:write'],
      detail: 'the CI pipeline',
    })
    expect(Date.parse(issued.expiresAt) - Date.now()).toBeGreaterThan(89 * 86_400_000)
    expect(run.stderr).toContain(WARNING)
    expect(run.stderr).not.toContain(issued.token)

    const listed = json(await cli(['keys', 'list', '--env', 'test', '--status', 'active', '--json']))
    expect(listed.items.map((key: any) => key.id)).toContain(issued.id)
    expect(listed.items.every((key: any) => key.environment === 'test' && key.status === 'active')).toBe(true)
    expect(JSON.stringify(listed)).not.toContain(issued.token)

    const got = json(await cli(['keys', 'get', issued.id, '--json']))
    expect(got).toMatchObject({ id: issued.id, name: 'ci-deploy', status: 'active', disabled: false })
    expect(got).not.toHaveProperty('token')

    const verify = (token: string, ...more: string[]) => cli(['verify', token, ...more, '--json'])
    let verified = await verify(issued.token, '--scope', 'recordings:read', '--env', 'test')
    expect(verified.code).toBe(0)
    expect(json(verified)).toMatchObject({ valid: true, kind: 'access_key', tokenId: issued.id })

    expect(json(await cli(['keys', 'disable', issued.id, '--json']))).toMatchObject({ status: 'disabled' })
    verified = await verify(issued.token)
    expect(verified.code).toBe(1)
    expect(json(verified)).toEqual({ valid: false, reason: 'DISABLED' })

    expect(json(await cli(['keys', 'enable', issued.id, '--json']))).toMatchObject({ status: 'active' })
    expect((await verify(issued.token)).code).toBe(0)

    const rotation = await cli(['keys', 'rotate', issued.id, '--json'])
    expect(rotation.code).toBe(0)
    const rotated = json(rotation)
    expect(rotated).toMatchObject({
      rotatedFrom: issued.id,
      name: 'ci-deploy',
      token: expect.stringMatching(/^tk_test_/),
    })
    expect(rotation.stderr).toContain(WARNING)
    expect((await verify(rotated.token)).code).toBe(0)
    expect((await verify(issued.token)).code).toBe(0) // both keys work until one is revoked

    const revoked = json(await cli(['keys', 'revoke', issued.id, '--json']))
    expect(revoked).toEqual({ id: issued.id, revokedAt: expect.any(String) })
    verified = await verify(issued.token)
    expect(verified.code).toBe(1)
    expect(json(verified)).toEqual({ valid: false, reason: 'REVOKED' })
    expect(json(await cli(['keys', 'revoke', issued.id, '--json']))).toEqual(revoked)
    expect((await verify(rotated.token)).code).toBe(0)
  })

  it('prints tables a person can read, and the plaintext once, with the warning on stderr', async () => {
    const run = await cli(['keys', 'issue', '--name', 'voice-api', '--env', 'live', '--scope', 'tokend:verify'])
    expect(run.code).toBe(0)
    const token = /^(tk_live_\w+)$/m.exec(run.stdout)?.[1] as string
    const id = /^id\s+(tok_\w+)$/m.exec(run.stdout)?.[1] as string
    expect(token).toBeDefined()
    expect(id).toBeDefined()
    expect(count(run.stdout, token)).toBe(1)
    expect(run.stdout).toMatch(/^name\s+voice-api$/m)
    expect(run.stdout).not.toContain(WARNING)
    expect(run.stderr).toContain(WARNING)
    expect(run.stderr).not.toContain(token)

    const list = await cli(['keys', 'list'])
    expect(list.code).toBe(0)
    const lines = list.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ID\s+NAME\s+ENV\s+ROLE\s+STATUS\s+SCOPES\s+EXPIRES\s+LAST USED$/)
    const row = lines.find((line) => line.startsWith(id)) as string
    expect(row).toMatch(/^tok_\w+\s+voice-api\s+live\s+manager\s+active\s+tokend:verify\s+never\s+/)
    // Columns line up: every row has its NAME where the header has it.
    const nameColumn = (lines[0] as string).indexOf('NAME')
    expect(lines.every((line) => line[nameColumn - 1] === ' ' && line[nameColumn] !== ' ')).toBe(true)
    expect(list.stdout).not.toContain(token)

    const get = await cli(['keys', 'get', id])
    expect(get.stdout).toMatch(/^name\s+voice-api$/m)
    expect(get.stdout).toMatch(new RegExp(`^id\\s+${id}$`, 'm'))
    expect(get.stdout).toMatch(/^status\s+active$/m)
    expect(get.stdout).toMatch(/^created\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m)

    const valid = await cli(['verify', token])
    expect(valid.code).toBe(0)
    expect(valid.stdout).toMatch(/^valid\s+access_key$/m)
    expect(valid.stdout).toContain(`${id} (voice-api)`)
    const denied = await cli(['verify', token, '--scope', 'recordings:write', '--env', 'test'])
    expect(denied.code).toBe(1)
    expect(denied.stdout).toMatch(/^denied\s+(INSUFFICIENT_SCOPE|WRONG_ENVIRONMENT)$/m)

    const revoked = await cli(['keys', 'revoke', id])
    expect(revoked.stdout).toMatch(new RegExp(`^revoked ${id} at \\d{4}-`))
  })

  it('updates a key: scopes, meta, networks, an expiry only closer; verify --client-ip', async () => {
    const key = await issue(['--scope', 'calls:read', '--scope', 'calls:write', '--expires-in', '30d'])
    const bound = await issue(['--meta', '{"team":"voice"}', '--cidr', '10.0.0.0/8'])
    expect(bound).toMatchObject({ meta: { team: 'voice' }, allowedCidrs: ['10.0.0.0/8'] })
    const soon = new Date(Date.now() + 3_600_000).toISOString()
    const run = await cli([
      'keys',
      'update',
      key.id,
      '--scope',
      'calls:read',
      '--meta',
      '{"tier":1}',
      '--expires-at',
      soon,
    ])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^scopes\s+calls:read$/m)
    expect(run.stdout).toMatch(/^meta\s+\{"tier":1\}$/m)
    const updated = json(await cli(['keys', 'update', key.id, '--cidr', '192.0.2.0/24', '--json']))
    expect(updated).toMatchObject({ scopes: ['calls:read'], allowedCidrs: ['192.0.2.0/24'], expiresAt: soon })
    const inside = await cli(['verify', key.token, '--client-ip', '192.0.2.9', '--json'])
    expect([inside.code, json(inside).meta]).toEqual([0, { tier: 1 }])
    const outside = await cli(['verify', key.token, '--client-ip', '198.51.100.1', '--json'])
    expect([outside.code, json(outside)]).toEqual([1, { valid: false, reason: 'IP_NOT_ALLOWED' }])
    expect(json(await cli(['keys', 'update', key.id, '--any-network', '--no-scopes', '--json']))).toMatchObject({
      allowedCidrs: [],
      scopes: [],
    })

    const later = await cli(['keys', 'update', key.id, '--expires-at', new Date(Date.now() + 86_400_000).toISOString()])
    expect(later.code).toBe(2)
    expect(later.stderr).toContain('closer')
    expect((await cli(['keys', 'update', key.id])).code).toBe(2)
    expect((await cli(['keys', 'update', key.id, '--meta', '{not json'])).code).toBe(2)
    expect((await cli(['keys', 'update', key.id, '--cidr', '10.0.0.0/99'])).code).toBe(2)
    expect((await cli(['keys', 'update', 'tok_unknown', '--name', 'x'])).code).toBe(4)
  })

  it('follows cursors with --all, and says when there is more', async () => {
    for (let i = 0; i < 3; i++) await issue(['--name', `page-${i}`])
    const first = json(await cli(['keys', 'list', '--limit', '2', '--json']))
    expect(first.items).toHaveLength(2)
    expect(first.nextCursor).toEqual(expect.any(String))
    const second = json(await cli(['keys', 'list', '--limit', '2', '--cursor', first.nextCursor, '--json']))
    expect(second.items[0].id).not.toBe(first.items[1].id)

    const all = json(await cli(['keys', 'list', '--limit', '1', '--all', '--json']))
    expect(all.nextCursor).toBeNull()
    const everything = json(await cli(['keys', 'list', '--limit', '100', '--json']))
    expect(all.items.map((key: any) => key.id)).toEqual(everything.items.map((key: any) => key.id))
    expect(all.items.length).toBeGreaterThan(3)

    const human = await cli(['keys', 'list', '--limit', '1'])
    expect(human.stderr).toContain('--cursor')
    expect(human.stdout.trimEnd().split('\n')).toHaveLength(2)
  })

  it('lists forgotten keys: --expiring and --unused take days', async () => {
    const soon = await issue(['--name', 'expiring-soon', '--expires-in', '30d'])
    const idle = await issue(['--name', 'long-idle'])
    await query(tokend.databaseUrl, "update access_keys set created_at = now() - interval '100 days' where id = $1", [
      idle.id,
    ])
    const ids = (run: Run) => json(run).items.map((key: { id: string }) => key.id)
    expect(ids(await cli(['keys', 'list', '--expiring', '30d', '--limit', '100', '--json']))).toContain(soon.id)
    expect(ids(await cli(['keys', 'list', '--expiring', '30d', '--limit', '100', '--json']))).not.toContain(idle.id)
    expect(ids(await cli(['keys', 'list', '--unused', '90d', '--json']))).toEqual([idle.id])
    expect(ids(await cli(['keys', 'list', '--expiring', '30', '--unused', '90d', '--json']))).toEqual([])
    for (const bad of ['0d', '36501d', '2w', 'soon']) {
      const run = await cli(['keys', 'list', '--unused', bad])
      expect(run.code, bad).toBe(2)
      expect(run.stderr).toContain('expected days such as 30d')
    }
  })

  it('verifies a key read from stdin, and requires the role asked for', async () => {
    const key = await issue()
    const run = await cli(['verify', '-', '--role', 'admin', '--json'], { stdin: `${key.token}\n` })
    expect(run.code).toBe(1)
    expect(json(run)).toMatchObject({ valid: false, reason: 'INSUFFICIENT_SCOPE' })
    expect((await cli(['verify', '-', '--role', 'manager'], { stdin: key.token })).code).toBe(0)
    expect((await cli(['verify', 'tk_live_nope', '--json'])).code).toBe(1)
  })

  it('creates a key with credits and a refill, spends them with --cost, and refuses a bad --refill', async () => {
    const run = await cli(['keys', 'create', '--name', 'm', '--env', 'test', '--credits', '3', '--refill', '100/day'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^credits\s+3, back to 100 every day \(UTC\)$/m)
    const token = run.stdout.trim().split('\n').at(-1) as string
    expect(json(await cli(['verify', token, '--cost', '2', '--json']))).toMatchObject({ valid: true, remaining: 1 })
    const denied = await cli(['verify', token, '--cost', '2'])
    expect(denied.code).toBe(1)
    expect(denied.stdout).toMatch(/^denied\s+USAGE_EXCEEDED$/m)
    expect(denied.stdout).toMatch(/^credits left\s+1$/m)
    for (const bad of [
      ['--refill', '100/week'],
      ['--refill', '-1/day'],
      ['--credits', '-5'],
      ['--credits', '1.5'],
    ]) {
      const refused = await cli(['keys', 'create', '--name', 'bad', '--env', 'test', '--credits', '1', ...bad])
      expect(refused.code, bad.join(' ')).toBe(2)
    }
    expect((await cli(['keys', 'create', '--name', 'bad', '--env', 'test', '--refill', '5/day'])).code).toBe(2)
  })

  it('exchanges a key for a derived token and verifies it with its audience; refuses a ttl over 900 s and scopes the key lacks', async () => {
    const key = await issue(['--scope', 'recordings:read', '--scope', 'recordings:write'])
    const exchanged = await cli(
      ['keys', 'exchange', '--audience', 'voice-api', '--scope', 'recordings:read', '--ttl', '60', '--json'],
      { key: key.token },
    )
    expect(exchanged.code, exchanged.stderr).toBe(0)
    const derived = json(exchanged) as { token: string; parent: string; scopes: string[]; audience: string }
    expect(derived).toMatchObject({ parent: key.id, scopes: ['recordings:read'], audience: 'voice-api' })
    const human = await cli(['keys', 'exchange', '--audience', 'voice-api'], { key: key.token })
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/m)
    const verified = await cli(['verify', '-', '--audience', 'voice-api', '--json'], { stdin: derived.token })
    expect(verified.code).toBe(0)
    expect(json(verified)).toMatchObject({ valid: true, kind: 'derived', tokenId: key.id, audience: 'voice-api' })
    const wrong = await cli(['verify', '-', '--audience', 'billing', '--json'], { stdin: derived.token })
    expect(wrong.code).toBe(1)
    expect(json(wrong)).toEqual({ valid: false, reason: 'WRONG_AUDIENCE' })
    const long = await cli(['keys', 'exchange', '--audience', 'voice-api', '--ttl', '901'], { key: key.token })
    expect(long.code).toBe(2)
    const wider = await cli(['keys', 'exchange', '--audience', 'x', '--scope', 'calls:read'], { key: key.token })
    expect(wider.code).toBe(3)
    expect(wider.stderr).toContain('calls:read')
  })

  it('reports leaked keys from a file or stdin, one per line', async () => {
    const a = await issue(['--name', 'leaked-a'])
    const b = await issue(['--name', 'leaked-b'])
    const file = join(dir, 'leaked.txt')
    await writeFile(file, `${a.token}\n\n  not a key  \n${b.token}\r\n`)
    const run = await cli(['keys', 'report-leaked', file])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(new RegExp(`^1\\s+revoked\\s+${a.id}`, 'm'))
    expect(run.stdout).toMatch(/^3\s+malformed\s+-/m)
    expect(run.stdout).toMatch(new RegExp(`^4\\s+revoked\\s+${b.id}`, 'm'))
    expect(run.stdout).toContain('revoked 2 of 3')
    expect(run.stdout).not.toContain(a.token)

    const again = json(await cli(['keys', 'report-leaked', '-', '--json'], { stdin: `${a.token}\n${b.token}\n` }))
    expect(again).toEqual({
      revoked: 0,
      results: [
        { index: 0, status: 'already_revoked', tokenId: a.id, accountId: a.accountId },
        { index: 1, status: 'already_revoked', tokenId: b.id, accountId: b.accountId },
      ],
    })
    expect(json(await cli(['verify', a.token, '--json']))).toEqual({ valid: false, reason: 'REVOKED' })

    const empty = await cli(['keys', 'report-leaked', '-'], { stdin: '\n\n' })
    expect(empty.code).toBe(2)
  })
})

describe('accounts', () => {
  it('creates, lists, suspends and reactivates an account; suspension stops its keys', async () => {
    const created = json(await cli(['accounts', 'create', '--name', 'acme', '--plan', 'paid', '--json']))
    expect(created).toMatchObject({ id: expect.stringMatching(/^acc_/), name: 'acme', plan: 'paid', status: 'active' })

    const listed = json(await cli(['accounts', 'list', '--all', '--json']))
    expect(listed.items.map((account: any) => account.id)).toContain(created.id)
    const human = await cli(['accounts', 'list'])
    expect(human.stdout).toMatch(/^ID\s+NAME\s+PLAN\s+STATUS\s+OPERATOR\s+CREATED$/m)
    expect(human.stdout).toMatch(new RegExp(`^${created.id}\\s+acme\\s+paid\\s+active\\s+no\\s+`, 'm'))

    const key = await issue(['--env', 'live', '--account', created.id])
    expect(key.accountId).toBe(created.id)
    expect(json(await cli(['keys', 'list', '--account', created.id, '--json'])).items).toHaveLength(1)

    const suspended = await cli(['accounts', 'suspend', created.id])
    expect(suspended.code).toBe(0)
    expect(suspended.stdout).toMatch(/^status\s+suspended$/m)
    const denied = await cli(['verify', key.token, '--json'])
    expect(denied.code).toBe(1)
    expect(json(denied)).toEqual({ valid: false, reason: 'ACCOUNT_SUSPENDED' })

    expect(json(await cli(['accounts', 'reactivate', created.id, '--json']))).toMatchObject({ status: 'active' })
    expect((await cli(['verify', key.token])).code).toBe(0)
  })
})

/** A public procedure over HTTP, as a browser or a sibling service calls it: status and body. */
async function post(procedure: string, input: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${tokend.url}/trpc/${procedure}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  })
  return { status: response.status, body: await response.json() }
}

describe('users', () => {
  const PASSWORD = 'correct horse battery staple'

  it('creates, lists, changes the role of and removes a user; the password comes from stdin only', async () => {
    const run = await cli(
      ['users', 'create', '--username', 'Alice', '--email', 'alice@example.com', '--password-stdin', '--json'],
      { stdin: `${PASSWORD}\n` },
    )
    expect(run.code, run.stderr).toBe(0)
    const me = json(await cli(['whoami', '--json']))
    const alice = json(run)
    expect(alice).toEqual({
      id: expect.stringMatching(/^usr_/),
      accountId: me.accountId,
      username: 'alice',
      email: 'alice@example.com',
      role: 'manager',
      createdAt: expect.any(String),
    })
    expect(run.stdout + run.stderr).not.toContain(PASSWORD)
    // The password read from stdin is the one that signs in (its line break is not part of it).
    const login = await post('auth.login', { username: 'alice', password: PASSWORD })
    expect(login.status).toBe(200)

    const human = await cli(
      ['users', 'create', '--username', 'bob', '--email', 'bob@example.com', '--role', 'admin', '--password-stdin'],
      {
        stdin: `${PASSWORD} bob`,
      },
    )
    expect(human.code, human.stderr).toBe(0)
    const bob = /^id\s+(usr_\w+)$/m.exec(human.stdout)?.[1] as string
    expect(bob).toBeDefined()
    expect(human.stdout).toMatch(/^username\s+bob$/m)
    expect(human.stdout).toMatch(/^role\s+admin$/m)
    expect(human.stdout + human.stderr).not.toContain(PASSWORD)

    const listed = json(await cli(['users', 'list', '--all', '--json']))
    expect(listed.nextCursor).toBeNull()
    expect(listed.items.map((user: any) => user.id)).toEqual(expect.arrayContaining([alice.id, bob]))
    expect(JSON.stringify(listed)).not.toMatch(/password|hash/i)
    const table = await cli(['users', 'list'])
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/^ID\s+USERNAME\s+EMAIL\s+ROLE\s+CREATED$/m)
    expect(table.stdout).toMatch(
      new RegExp(
        `^${alice.id}\\s+alice\\s+alice@example\\.com\\s+manager\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`,
        'm',
      ),
    )
    const page = await cli(['users', 'list', '--limit', '1'])
    expect(page.stdout.trimEnd().split('\n')).toHaveLength(2)
    expect(page.stderr).toContain('--cursor')

    expect(json(await cli(['users', 'set-role', alice.id, 'admin', '--json']))).toMatchObject({
      id: alice.id,
      role: 'admin',
    })
    const back = await cli(['users', 'set-role', alice.id, 'manager'])
    expect(back.code).toBe(0)
    expect(back.stdout).toMatch(/^role\s+manager$/m)

    const removed = await cli(['users', 'remove', alice.id])
    expect(removed.code).toBe(0)
    expect(removed.stdout).toMatch(new RegExp(`^removed ${alice.id} at \\d{4}-`))
    expect(json(await cli(['users', 'list', '--all', '--json'])).items.map((user: any) => user.id)).not.toContain(
      alice.id,
    )
    expect((await post('auth.login', { username: 'alice', password: PASSWORD })).status).toBe(401)
    const again = await cli(['users', 'remove', alice.id])
    expect(again.code).toBe(4)
    expect(again.stderr).toContain('[not_found]')
  })

  it("manages another account's users with --account, and keeps its last admin", async () => {
    const account = json(await cli(['accounts', 'create', '--name', 'people-co', '--json']))
    const created = json(
      await cli(
        [
          'users',
          'create',
          '--username',
          'carol',
          '--email',
          'carol@example.com',
          '--role',
          'admin',
          '--account',
          account.id,
          '--password-stdin',
          '--json',
        ],
        { stdin: PASSWORD },
      ),
    )
    expect(created).toMatchObject({ accountId: account.id, role: 'admin' })
    expect(json(await cli(['users', 'list', '--account', account.id, '--json'])).items).toEqual([created])
    expect(json(await cli(['users', 'list', '--all', '--json'])).items.map((user: any) => user.id)).not.toContain(
      created.id,
    )
    for (const args of [
      ['users', 'set-role', created.id, 'manager'],
      ['users', 'remove', created.id],
    ]) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: 5 })
      expect(run.stderr).toMatch(/^tokend: error: an account keeps at least one admin user.* \[conflict\]$/m)
    }
  })

  it('exits 5 for a taken username, 4 for an unknown user, 2 for bad input, 3 without the right key', async () => {
    const create = (username: string, more: string[] = [], options: Options = {}) =>
      cli(
        ['users', 'create', '--username', username, '--email', `${username}@example.com`, '--password-stdin', ...more],
        {
          stdin: PASSWORD,
          ...options,
        },
      )
    expect((await create('dave')).code).toBe(0)
    const taken = await create('DAVE')
    expect(taken.code).toBe(5)
    expect(taken.stderr).toMatch(/^tokend: error: the username "dave" is taken \[username_taken\]$/m)
    expect(taken.stdout).toBe('')

    for (const args of [
      ['users', 'set-role', 'usr_nope', 'admin'],
      ['users', 'remove', 'usr_nope'],
    ]) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: 4 })
      expect(run.stderr).toMatch(/^tokend: error: user not found \[not_found\]$/m)
    }

    // Refused by tokend: its 400, with the field at fault, and never the password itself.
    for (const [args, stdin] of [
      [['users', 'create', '--username', 'erin', '--email', 'not-an-email', '--password-stdin'], PASSWORD],
      [['users', 'create', '--username', 'no spaces', '--email', 'x@example.com', '--password-stdin'], PASSWORD],
      [['users', 'create', '--username', 'frank', '--email', 'f@example.com', '--password-stdin'], 'short-pw'],
      [['users', 'list', '--limit', '500'], ''],
    ] as const) {
      const run = await cli([...args], { stdin })
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stderr).toMatch(/^tokend: error: invalid input: .+ \[invalid_input\]$/m)
      expect(run.stdout).toBe('')
      if (stdin) expect(run.stderr).not.toContain(stdin)
    }
    // Refused before any call: usage errors, exit 2.
    for (const [args, stdin] of [
      [['users', 'create', '--username', 'gina', '--email', 'g@example.com'], PASSWORD], // no terminal, no --password-stdin
      [['users', 'create', '--username', 'gina', '--email', 'g@example.com', '--password-stdin'], '\n'],
      [['users', 'create', '--email', 'g@example.com', '--password-stdin'], PASSWORD],
      [['users', 'create', '--username', 'gina', '--email', 'g@example.com', '--role', 'owner'], PASSWORD],
      [['users', 'set-role', 'usr_x', 'owner'], ''],
      [['users', 'set-role', 'usr_x'], ''],
      [['users', 'remove'], ''],
    ] as const) {
      const run = await cli([...args], { stdin })
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stdout).toBe('')
    }
    expect(json(await cli(['users', 'list', '--all', '--json'])).items.map((user: any) => user.username)).not.toContain(
      'gina',
    )

    const none = await cli(['users', 'list'], { key: null })
    expect(none.code).toBe(3)
    expect(none.stderr).toContain('TOKEND_KEY')
    expect((await create('henry', [], { key: null })).code).toBe(3)
    const manager = (await issue(['--name', 'people manager', '--env', 'live'])).token
    for (const args of [
      ['users', 'create', '--username', 'ivan', '--email', 'ivan@example.com', '--password-stdin'],
      ['users', 'set-role', 'usr_nope', 'admin'],
      ['users', 'remove', 'usr_nope'],
    ]) {
      const run = await cli(args, { key: manager, stdin: PASSWORD })
      expect({ args, code: run.code }).toEqual({ args, code: 3 })
      expect(run.stderr).toContain('[forbidden]')
    }
    expect((await cli(['users', 'list'], { key: manager })).code).toBe(0)
  })
})

describe('direct', () => {
  it('creates a link whose hash is printed once and boots, lists it without the hash, and deletes it', async () => {
    const run = await cli([
      'direct',
      'create',
      '--resource-type',
      'ai',
      '--resource-id',
      'a1b2-c3',
      '--env',
      'test',
      '--json',
    ])
    expect(run.code, run.stderr).toBe(0)
    const link = json(run)
    expect(link).toEqual({
      id: expect.stringMatching(/^dir_/),
      hash: expect.stringMatching(/^direct\.[\w-]{43}$/),
      start: link.hash.slice(0, 11),
      accountId: expect.stringMatching(/^acc_/),
      resourceType: 'ai',
      resourceId: 'a1b2-c3',
      environment: 'test',
      createdBy: expect.any(String),
      createdAt: expect.any(String),
    })
    expect(run.stderr).toContain(WARNING)
    expect(run.stderr).not.toContain(link.hash)
    const booted = await post('auth.boot', { directHash: link.hash })
    expect(booted.status).toBe(200)
    expect(booted.body.result.data).toMatchObject({ type: 'direct', resourceType: 'ai', resourceId: 'a1b2-c3' })

    const human = await cli(['direct', 'create', '--resource-type', 'call_flow', '--resource-id', 'flow.7'])
    expect(human.code, human.stderr).toBe(0)
    const hash = /^(direct\.[\w-]+)$/m.exec(human.stdout)?.[1] as string
    const id = /^id\s+(dir_\w+)$/m.exec(human.stdout)?.[1] as string
    expect(hash).toBeDefined()
    expect(id).toBeDefined()
    expect(count(human.stdout, hash)).toBe(1)
    expect(human.stdout).toMatch(new RegExp(`^topic\\s+customer_id:${link.accountId}:call_flow:flow\\.7$`, 'm'))
    expect(human.stdout).toMatch(/^resource\s+call_flow flow\.7$/m)
    expect(human.stderr).toContain(WARNING)
    expect((await post('auth.boot', { directHash: hash })).status).toBe(200)

    const listed = json(await cli(['direct', 'list', '--all', '--json']))
    expect(listed.items.map((item: any) => item.id)).toEqual(expect.arrayContaining([link.id, id]))
    expect(JSON.stringify(listed)).not.toContain(link.hash)
    expect(JSON.stringify(listed)).not.toContain(hash)
    const table = await cli(['direct', 'list'])
    expect(table.stdout).toMatch(/^ID\s+TYPE\s+RESOURCE\s+ENV\s+START\s+CREATED BY\s+CREATED\s+TOPIC$/m)
    expect(table.stdout).toMatch(
      new RegExp(
        `^${link.id}\\s+ai\\s+a1b2-c3\\s+test\\s+${link.start}…\\s+\\S+\\s+\\S+Z\\s+customer_id:${link.accountId}:ai:a1b2-c3$`,
        'm',
      ),
    )
    expect(table.stdout).not.toContain(hash)

    const deleted = await cli(['direct', 'delete', link.id])
    expect(deleted.code).toBe(0)
    expect(deleted.stdout).toMatch(new RegExp(`^deleted ${link.id} at \\d{4}-`))
    expect((await post('auth.boot', { directHash: link.hash })).status).toBe(400)
    expect(json(await cli(['direct', 'delete', id, '--json']))).toEqual({ id, deletedAt: expect.any(String) })
    expect(json(await cli(['direct', 'list', '--all', '--json'])).items.map((item: any) => item.id)).not.toContain(id)
  })

  it('exits 4 for an unknown link, 2 for bad input, 3 without the right key', async () => {
    const missing = await cli(['direct', 'delete', 'dir_nope'])
    expect(missing.code).toBe(4)
    expect(missing.stderr).toMatch(/^tokend: error: direct link not found \[not_found\]$/m)

    for (const args of [
      ['direct', 'create', '--resource-type', 'Bad:Type', '--resource-id', 'x'],
      ['direct', 'create', '--resource-type', 'ai', '--resource-id', 'a:b'],
      ['direct', 'list', '--limit', '0'],
    ]) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stderr).toMatch(/^tokend: error: invalid input: .+ \[invalid_input\]$/m)
    }
    for (const args of [
      ['direct', 'create', '--resource-type', 'ai'],
      ['direct', 'create', '--resource-type', 'ai', '--resource-id', 'x', '--env', 'prod'],
      ['direct', 'delete'],
      ['direct', 'frobnicate'],
    ]) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stdout).toBe('')
    }

    expect((await cli(['direct', 'list'], { key: null })).code).toBe(3)
    const manager = (await issue(['--name', 'direct manager', '--env', 'live'])).token
    for (const args of [
      ['direct', 'create', '--resource-type', 'ai', '--resource-id', 'x'],
      ['direct', 'delete', 'dir_nope'],
    ]) {
      const run = await cli(args, { key: manager })
      expect({ args, code: run.code }).toEqual({ args, code: 3 })
      expect(run.stderr).toContain('[forbidden]')
    }
    expect((await cli(['direct', 'list'], { key: manager })).code).toBe(0)
  })
})

describe('audit', () => {
  it('lists who did what, filtered by target, action and time', async () => {
    const key = await issue(['--name', 'audited'])
    await cli(['keys', 'revoke', key.id])
    const events = json(await cli(['audit', 'list', '--target', key.id, '--json']))
    expect(events.items.map((event: any) => event.action)).toEqual(['token.revoke', 'token.issue'])
    const me = json(await cli(['whoami', '--json']))
    expect(events.items.every((event: any) => event.actorId === me.tokenId && event.targetId === key.id)).toBe(true)

    const revokes = json(await cli(['audit', 'list', '--action', 'token.revoke', '--since', '1h', '--all', '--json']))
    expect(revokes.items.map((event: any) => event.targetId)).toContain(key.id)
    expect(revokes.items.every((event: any) => event.action === 'token.revoke')).toBe(true)
    const future = new Date(Date.now() + 3_600_000).toISOString()
    expect(json(await cli(['audit', 'list', '--since', future, '--json'])).items).toEqual([])

    const human = await cli(['audit', 'list', '--target', key.id])
    expect(human.stdout).toMatch(/^TIME\s+ACTION\s+ACTOR\s+TARGET\s+ACCOUNT\s+ADDRESS$/m)
    expect(human.stdout).toMatch(new RegExp(`^\\S+Z\\s+token\\.revoke\\s+${me.tokenId}\\s+${key.id}\\s+acc_`, 'm'))
  })
})

describe('credentials and errors', () => {
  it('reads the key from TOKEND_KEY, --key-file or TOKEND_KEY_FILE', async () => {
    const file = join(dir, 'admin.key')
    await writeFile(file, `${admin}\n`, { mode: 0o600 })
    const me = json(await cli(['whoami', '--json']))
    expect(me).toMatchObject({ name: 'bootstrap admin', operator: true, role: 'admin' })
    for (const run of [
      await cli(['--key-file', file, 'whoami', '--json'], { key: null }),
      await cli(['whoami', '--key-file', file, '--json'], { key: null }),
      await cli(['whoami', '--json'], { key: null, env: { TOKEND_KEY_FILE: file } }),
    ]) {
      expect(run.code).toBe(0)
      expect(json(run).tokenId).toBe(me.tokenId)
    }
  })

  it('exits 3 without a key, with a bad key, and for a manager doing admin work', async () => {
    const none = await cli(['keys', 'list'], { key: null })
    expect(none.code).toBe(3)
    expect(none.stderr).toContain('TOKEND_KEY')
    expect(none.stdout).toBe('')
    expect((await cli(['keys', 'list'], { key: null, env: { TOKEND_KEY_FILE: join(dir, 'missing.key') } })).code).toBe(
      3,
    )

    for (const bad of [generateKey('tk', 'live'), 'not-a-key']) {
      const run = await cli(['keys', 'list', '--json'], { key: bad })
      expect(run.code).toBe(3)
      expect(run.stderr).toContain('[invalid_token]')
      expect(run.stdout).toBe('')
    }

    const manager = (await issue(['--name', 'a manager', '--env', 'live'])).token
    for (const args of [
      ['keys', 'issue', '--name', 'x', '--env', 'test'],
      ['accounts', 'create', '--name', 'x'],
      ['audit', 'list'],
    ]) {
      const run = await cli(args, { key: manager })
      expect({ args, code: run.code }).toEqual({ args, code: 3 })
      expect(run.stderr).toContain('[forbidden]')
    }
    expect((await cli(['keys', 'list'], { key: manager })).code).toBe(0)
    const verifier = await cli(['verify', manager], { key: manager })
    expect(verifier.code).toBe(3) // verifying needs tokend:verify, which a denial (1) must not hide
  })

  it('exits 4 for an unknown id, 5 for a conflict, 2 for bad input', async () => {
    const missing = await cli(['keys', 'get', 'tok_nope'])
    expect(missing.code).toBe(4)
    expect(missing.stderr).toMatch(/^tokend: error: .*not found \[not_found\]$/m)
    expect((await cli(['accounts', 'suspend', 'acc_nope'])).code).toBe(4)

    const key = await issue()
    await cli(['keys', 'revoke', key.id])
    const conflict = await cli(['keys', 'disable', key.id])
    expect(conflict.code).toBe(5)
    expect(conflict.stderr).toContain('[token_revoked]')

    for (const args of [
      ['keys', 'issue', '--env', 'test'], // --name missing
      ['keys', 'issue', '--name', 'x', '--env', 'prod'],
      ['keys', 'issue', '--name', 'x', '--env', 'test', '--expires-in', '2w'],
      ['keys', 'list', '--limit', 'many'],
      ['keys', 'get'],
      ['keys', 'frobnicate'],
      ['keys'],
      [],
      ['--url', 'ftp://example.com', 'keys', 'list'],
    ]) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stdout).toBe('')
    }

    // Input only tokend can judge: its 400 and field issues, as exit code 2.
    for (const args of [
      ['keys', 'issue', '--name', 'x', '--env', 'test', '--scope', 'NOT A SCOPE'],
      ['keys', 'issue', '--name', 'x', '--env', 'test', '--expires-at', '2001-01-01T00:00:00Z'],
      ['keys', 'list', '--limit', '1000'],
      ['audit', 'list', '--since', 'yesterday'],
    ]) {
      const run = await cli(args)
      expect({ args, code: run.code }).toEqual({ args, code: 2 })
      expect(run.stderr).toMatch(/^tokend: error: invalid input: .+ \[invalid_input\]$/m)
    }
  })

  it('exits 6 when tokend cannot be reached', async () => {
    const url = `http://127.0.0.1:${await freePort()}`
    for (const run of [
      await cli(['keys', 'list'], { env: { TOKEND_URL: url } }),
      await cli(['--url', url, 'verify', 'tk_live_x']),
    ]) {
      expect(run.code).toBe(6)
      expect(run.stderr).toContain(`cannot reach tokend at ${url}`)
      expect(run.stderr).toContain('ECONNREFUSED')
      expect(run.stderr).toContain('give its address with --url or TOKEND_URL')
    }
  })
})

describe('help', () => {
  const commands = [
    [],
    ['keys'],
    ['keys', 'issue'],
    ['keys', 'list'],
    ['keys', 'get'],
    ['keys', 'disable'],
    ['keys', 'enable'],
    ['keys', 'rotate'],
    ['keys', 'update'],
    ['keys', 'revoke'],
    ['keys', 'exchange'],
    ['keys', 'report-leaked'],
    ['verify'],
    ['accounts'],
    ['accounts', 'create'],
    ['accounts', 'list'],
    ['accounts', 'suspend'],
    ['accounts', 'reactivate'],
    ['users'],
    ['users', 'create'],
    ['users', 'list'],
    ['users', 'set-role'],
    ['users', 'remove'],
    ['direct'],
    ['direct', 'create'],
    ['direct', 'list'],
    ['direct', 'delete'],
    ['audit'],
    ['audit', 'list'],
    ['whoami'],
    ['login'],
    ['logout'],
    ['completion'],
  ]

  it('answers --help for every command, with examples, without a key', async () => {
    const helps = new Map<string, string>()
    for (const command of commands) {
      const run = await cli([...command, '--help'], { key: null })
      expect({ command, code: run.code }).toEqual({ command, code: 0 })
      expect(run.stdout).toContain(`Usage: tokend ${command.join(' ')}`.trimEnd())
      expect(run.stdout).toMatch(/\nExamples:\n( {2}.*\n)* {2}\$ tokend /)
      helps.set(command.join(' '), run.stdout)
    }
    // The list above is complete: every command a group's help names is in it.
    for (const group of ['', 'keys', 'accounts', 'users', 'direct', 'audit']) {
      const listed = /\nCommands:\n([\s\S]*?)\n\n/.exec(helps.get(group) as string)?.[1] as string
      const names = [...listed.matchAll(/^ {2}([a-z-]+)/gm)].map((match) => match[1]).filter((name) => name !== 'help')
      expect(names.length).toBeGreaterThan(0)
      for (const name of names) expect(helps.has(`${group} ${name}`.trim()), `${group} ${name}`).toBe(true)
    }
  })

  it('prints its version', async () => {
    const manifest = JSON.parse(await readFile(join(repoRoot, 'packages/cli/package.json'), 'utf8'))
    for (const flag of ['--version', '-V']) {
      const run = await cli([flag], { key: null })
      expect([run.code, run.stdout]).toEqual([0, `${manifest.version}\n`])
    }
  })

  it('completes commands and options in bash', async () => {
    const script = (await cli(['completion', 'bash'], { key: null })).stdout
    expect(script).toContain('complete -o default -F _tokend tokend')
    const complete = async (...words: string[]) => {
      const line = `COMP_WORDS=(tokend ${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length}; _tokend; echo "\${COMPREPLY[*]}"`
      const { stdout } = await promisify(execFile)('bash', ['-c', `${script}\n${line}`])
      return stdout.trim().split(' ')
    }
    expect(await complete('ke')).toEqual(['keys'])
    expect(await complete('keys', 'r')).toEqual(['rotate', 'revoke', 'report-leaked'])
    expect(await complete('keys', 'rotate', 'tok_1', '--old')).toEqual(['--old-expires-in'])
    expect((await cli(['completion', 'zsh'], { key: null })).stdout).toContain('bashcompinit')
    expect((await cli(['completion', 'fish'], { key: null })).code).toBe(2)
  })

  it('logs in once: URL and key kept in ~/.config/tokend (0600), used until logout', async () => {
    const home = join(dir, 'home')
    const env = { HOME: home }
    const bad = await cli(['login'], { key: generateKey('tk', 'live'), env })
    expect(bad.code).toBe(3) // checked before anything is saved
    expect((await readdir(home).catch(() => [])).length).toBe(0)

    const login = await cli(['login'], { env })
    expect(login.code, login.stderr).toBe(0)
    expect(login.stdout).toContain(`logged in to ${tokend.url}`)
    const file = join(home, '.config/tokend/config.json')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700)

    // No TOKEND_URL, no TOKEND_KEY: the saved ones.
    const me = await cli(['whoami', '--json'], { key: null, env: { ...env, TOKEND_URL: '' } })
    expect(json(me)).toMatchObject({ name: 'bootstrap admin' })
    expect((await cli(['logout'], { key: null, env })).code).toBe(0)
    const after = await cli(['whoami'], { key: null, env: { ...env, TOKEND_URL: '' } })
    expect(after.code).toBe(3)
    expect(after.stderr).toContain('or run tokend login')
  })

  it('runs from the repository root as `pnpm tokend`', async () => {
    const run = await cli(['-s', 'tokend', 'whoami', '--json'], { command: ['pnpm'] })
    expect(run.code, run.stderr).toBe(0)
    expect(json(run)).toMatchObject({ name: 'bootstrap admin' })
  })
})
