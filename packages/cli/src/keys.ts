import { readFileSync } from 'node:fs'
import type { IssuedToken, RouterInputs, RouterOutputs, TokenInfo, VerifyResult } from '@tokend/auth'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { collect, days, examples, type PagingOptions, pages, wholeNumber, withPaging } from './commands.ts'
import { CliError, EXIT } from './errors.ts'
import { date, details, list, table, text } from './output.ts'
import { type Context, Session } from './session.ts'

type LeakReport = RouterOutputs['token']['reportLeaked']
type IssueInput = RouterInputs['token']['issue']
type UpdateInput = RouterInputs['token']['update']
type ListInput = Extract<RouterInputs['token']['list'], object>
type Requirements = NonNullable<RouterInputs['token']['verify']['require']>

const ENVIRONMENTS = ['live', 'test']
const ROLES = ['admin', 'manager']
/** `token.reportLeaked` takes at most this many strings per call. */
const LEAK_BATCH = 1_000

/** `tokend keys …` (token.issue, list, get, setDisabled, rotate, revoke, reportLeaked) and `tokend verify`. */
export function registerKeys(program: Command, context: Context): void {
  const keys = program
    .command('keys')
    .description('issue, list, inspect, rotate, disable and revoke access keys')
    .addHelpText('after', examples(['tokend keys list', 'tokend keys issue --name ci --env test --scope ci:run']))

  keys
    .command('issue')
    .alias('create')
    .description('issue a key; its plaintext is printed once, and only here')
    .requiredOption('--name <name>', 'friendly name, e.g. the service that holds it')
    .addOption(
      new Option('--env <environment>', 'the environment it works in').choices(ENVIRONMENTS).makeOptionMandatory(),
    )
    .addOption(new Option('--role <role>', 'admin or manager (default manager)').choices(ROLES))
    .option('--scope <scope>', 'a scope, e.g. recordings:read (repeat for more)', collect)
    .addOption(new Option('--expires-in <period>', 'expire after this long').choices(['30d', '90d', '1y', 'never']))
    .option('--expires-at <date>', 'expire at this ISO-8601 date instead')
    .option('--detail <text>', 'a longer description')
    .option('--account <accountId>', 'issue into this account (operator admins only)')
    .option('--meta <json>', 'a JSON object (at most 4 KB) that verify returns with the key', parseMeta)
    .option('--cidr <network>', 'allow the key only from this network, e.g. 10.0.0.0/8 (repeat for more)', collect)
    .option(
      '--credits <n>',
      'usage credits: each verify spends one (or its cost); none left is USAGE_EXCEEDED',
      wholeNumber,
    )
    .option('--refill <amount/interval>', 'set the credits back to amount every UTC day or month, e.g. 100/day', refill)
    .addHelpText(
      'after',
      examples([
        'tokend keys issue --name voice-api --env live --scope tokend:verify',
        'tokend keys create --name metered --env live --credits 1000 --refill 1000/month',
        'tokend keys issue --name ci --env test --scope recordings:read --scope recordings:write --expires-in 90d',
        '# keep only the plaintext (the warning goes to stderr):',
        'KEY=$(tokend keys issue --name ci --env test --json | jq -r .token)',
      ]),
    )
    .action(async (options: IssueOptions, command: Command) => {
      const session = new Session(command, context)
      const issued = await session.trpc.token.issue.mutate({
        name: options.name,
        environment: options.env,
        role: options.role,
        scopes: options.scope,
        expiresIn: options.expiresIn,
        expiresAt: options.expiresAt,
        detail: options.detail,
        accountId: options.account,
        meta: options.meta ?? undefined,
        allowedCidrs: options.cidr,
        credits: creditsOf(options) ?? undefined,
      })
      printIssued(session, issued)
    })

  const listCommand = keys
    .command('list')
    .description("list keys (your account's, or --account's for operator keys)")
    .addOption(new Option('--env <environment>', 'only this environment').choices(ENVIRONMENTS))
    .addOption(
      new Option('--status <status>', 'only keys in this state (default all)').choices([
        'active',
        'disabled',
        'revoked',
        'expired',
        'all',
      ]),
    )
    .option('--expiring <days>', 'only keys not yet expired that expire within this many days, e.g. 30d', days)
    .option('--unused <days>', 'only keys unused (never used: created) at least this long ago, e.g. 90d', days)
    .option('--account <accountId>', "another account's keys (operator keys only)")
  withPaging(listCommand)
    .addHelpText(
      'after',
      examples([
        'tokend keys list --status active',
        'tokend keys list --env live --all --json',
        '# forgotten keys: active, and unused for 90 days or expiring within 30',
        'tokend keys list --status active --unused 90d',
        'tokend keys list --expiring 30d --unused 90d',
      ]),
    )
    .action(async (options: ListOptions, command: Command) => {
      const session = new Session(command, context)
      const result = await pages(
        (cursor) =>
          session.trpc.token.list.query({
            environment: options.env,
            status: options.status ?? 'all',
            expiringWithin: options.expiring,
            unusedFor: options.unused,
            limit: options.limit ?? 50,
            cursor,
            accountId: options.account,
          }),
        options.cursor,
        options.all,
      )
      session.print(result, (page) =>
        table(
          ['ID', 'NAME', 'ENV', 'ROLE', 'STATUS', 'SCOPES', 'EXPIRES', 'LAST USED'],
          page.items.map((key) => [
            key.id,
            key.name,
            key.environment,
            key.role,
            key.status,
            list(key.scopes),
            date(key.expiresAt, 'never'),
            date(key.lastUsedAt, 'never'),
          ]),
          '(no keys)',
        ),
      )
      session.more(result)
    })

  keys
    .command('get')
    .description('show one key')
    .argument('<id>', 'the key id (tok_…)')
    .addHelpText('after', examples(['tokend keys get tok_01JB8M3ZB2K3', 'tokend keys get tok_01JB8M3ZB2K3 --json']))
    .action(async (id: string, _options: object, command: Command) => {
      const session = new Session(command, context)
      session.print(await session.trpc.token.get.query({ id }), showKey)
    })

  for (const [name, disabled, description] of [
    ['disable', true, 'stop a key from working until it is enabled again'],
    ['enable', false, 'let a disabled key work again (a revoked key stays revoked)'],
  ] as const) {
    keys
      .command(name)
      .description(description)
      .argument('<id>', 'the key id (tok_…)')
      .addHelpText('after', examples([`tokend keys ${name} tok_01JB8M3ZB2K3`]))
      .action(async (id: string, _options: object, command: Command) => {
        const session = new Session(command, context)
        session.print(await session.trpc.token.setDisabled.mutate({ id, disabled }), showKey)
      })
  }

  keys
    .command('update')
    .description('change a key: name, detail, scopes, meta, networks, credits; its expiry may only move closer')
    .argument('<id>', 'the key id (tok_…)')
    .option('--name <name>', 'a new friendly name')
    .option('--detail <text>', 'a new description')
    .option('--scope <scope>', 'the new scope list, replacing the old one (repeat for more)', collect)
    .option('--no-scopes', 'remove every scope')
    .option('--meta <json>', 'a JSON object replacing the meta; null removes it', parseMeta)
    .option('--cidr <network>', 'the new network list, replacing the old one (repeat for more)', collect)
    .option('--any-network', 'remove the network binding')
    .option('--credits <n>', 'a new usage-credit budget, replacing what is left', wholeNumber)
    .option('--no-credits', 'remove the usage credits')
    .option('--refill <amount/interval>', 'with --credits: set back to amount every UTC day or month', refill)
    .option('--expires-at <date>', 'expire at this ISO-8601 date (only closer than now set)')
    .addHelpText(
      'after',
      examples([
        'tokend keys update tok_01JB8M3ZB2K3 --scope recordings:read',
        'tokend keys update tok_01JB8M3ZB2K3 --cidr 10.0.0.0/8 --cidr 2001:db8::/32',
        'tokend keys update tok_01JB8M3ZB2K3 --credits 5000 --refill 5000/month',
        `tokend keys update tok_01JB8M3ZB2K3 --meta '{"plan":"gold"}' --expires-at 2027-01-01T00:00:00Z`,
      ]),
    )
    .action(async (id: string, options: UpdateOptions, command: Command) => {
      const session = new Session(command, context)
      if (options.scopes === false && options.scope)
        throw new CliError('give --scope or --no-scopes, not both', EXIT.usage)
      if (options.anyNetwork && options.cidr) throw new CliError('give --cidr or --any-network, not both', EXIT.usage)
      const input: UpdateInput = {
        id,
        name: options.name,
        detail: options.detail,
        scopes: options.scopes === false ? [] : options.scope,
        meta: options.meta,
        allowedCidrs: options.anyNetwork ? [] : options.cidr,
        expiresAt: options.expiresAt,
        credits: creditsOf(options),
      }
      const given = Object.entries(input).filter(([field, value]) => field !== 'id' && value !== undefined)
      if (given.length === 0) throw new CliError('nothing to change: give at least one option', EXIT.usage)
      session.print(await session.trpc.token.update.mutate(input), showKey)
    })

  keys
    .command('rotate')
    .description('issue a successor with the same name, role, scopes and environment; both work')
    .argument('<id>', 'the key id (tok_…)')
    .option('--old-expires-in <seconds>', 'let the old key expire this many seconds from now', wholeNumber)
    .addHelpText(
      'after',
      examples(['tokend keys rotate tok_01JB8M3ZB2K3', 'tokend keys rotate tok_01JB8M3ZB2K3 --old-expires-in 86400']),
    )
    .action(async (id: string, options: { oldExpiresIn?: number }, command: Command) => {
      const session = new Session(command, context)
      printIssued(session, await session.trpc.token.rotate.mutate({ id, oldExpiresIn: options.oldExpiresIn }))
    })

  keys
    .command('revoke')
    .description('revoke a key for good, on every replica at once')
    .argument('<id>', 'the key id (tok_…)')
    .addHelpText('after', examples(['tokend keys revoke tok_01JB8M3ZB2K3']))
    .action(async (id: string, _options: object, command: Command) => {
      const session = new Session(command, context)
      session.print(
        await session.trpc.token.revoke.mutate({ id }),
        (revoked) => `revoked ${revoked.id} at ${date(revoked.revokedAt)}\n`,
      )
    })

  keys
    .command('exchange')
    .description('exchange your key for a derived token: a JWT for one audience, at most 15 minutes')
    .requiredOption('--audience <audience>', 'the service the token is for, e.g. voice-api')
    .option('--scope <scope>', 'a scope of your key to give it (repeat for more; default all of them)', collect)
    .option('--ttl <seconds>', 'how long it lives, 1–900 seconds (default 300)', wholeNumber)
    .addHelpText(
      'after',
      examples([
        'tokend keys exchange --audience voice-api --scope recordings:read',
        'TOKEN=$(tokend keys exchange --audience voice-api --ttl 600 --json | jq -r .token)',
      ]),
    )
    .action(async (options: { audience: string; scope?: string[]; ttl?: number }, command: Command) => {
      const session = new Session(command, context)
      const derived = await session.trpc.token.exchange.mutate({
        audience: options.audience,
        scopes: options.scope,
        ttlSeconds: options.ttl,
      })
      session.print(derived, (token) =>
        details([
          ['parent', token.parent],
          ['audience', token.audience],
          ['scopes', list(token.scopes)],
          ['expires', date(token.expiresAt)],
        ]).concat(`\n${token.token}\n`),
      )
    })

  keys
    .command('report-leaked')
    .description('revoke every valid key among leaked strings (one per line) and notify their accounts')
    .argument('<file>', 'a file with one leaked string per line, or - for stdin')
    .addHelpText(
      'after',
      examples([
        'tokend keys report-leaked leaked.txt',
        'grep -o "tk_[a-z]*_[0-9A-Za-z]*" dump.log | tokend keys report-leaked -',
      ]),
    )
    .action(async (file: string, _options: object, command: Command) => {
      const session = new Session(command, context)
      const lines = readLines(file)
      const tokens = lines.map((line) => line.value)
      if (tokens.length === 0) throw new CliError(`no keys in ${file === '-' ? 'stdin' : file}`, EXIT.usage)
      // Batches of at most LEAK_BATCH; indexes in the output count across the whole input.
      const report: LeakReport = { revoked: 0, results: [] }
      for (let start = 0; start < tokens.length; start += LEAK_BATCH) {
        const batch = await session.trpc.token.reportLeaked.mutate({ tokens: tokens.slice(start, start + LEAK_BATCH) })
        report.revoked += batch.revoked
        report.results.push(...batch.results.map((result) => ({ ...result, index: result.index + start })))
      }
      session.print(report, (done) =>
        table(
          ['LINE', 'STATUS', 'KEY', 'ACCOUNT'],
          done.results.map((result) => [
            String(lines[result.index]?.line ?? '?'),
            result.status,
            text(result.tokenId),
            text(result.accountId),
          ]),
        ).concat(`revoked ${done.revoked} of ${done.results.length}\n`),
      )
    })

  program
    .command('verify')
    .description('check a key as a sibling service would; exit code 0 when valid, 1 when denied')
    .argument('<token>', 'the key to check, or - to read it from stdin (keeps it out of shell history)')
    .option('--scope <scope>', 'require this scope (repeat for more)', collect)
    .addOption(new Option('--env <environment>', 'require this environment').choices(ENVIRONMENTS))
    .addOption(new Option('--role <role>', 'require this role').choices(ROLES))
    .option('--client-ip <address>', 'the address the key is presented from (for keys bound to networks)')
    .option('--cost <n>', 'usage credits to spend, for keys with credits (default 1; 0 only checks)', wholeNumber)
    .option('--audience <audience>', 'require a derived token to be for this audience')
    .addHelpText(
      'after',
      examples([
        'tokend verify "$KEY" --scope recordings:read --env live',
        'tokend verify - < key.txt && echo ok',
        '# your own key needs the tokend:verify scope',
      ]),
    )
    .action(async (token: string, options: VerifyOptions, command: Command) => {
      const session = new Session(command, context)
      const key = token === '-' ? readFileSync(0, 'utf8').trim() : token
      const require: Requirements = {
        scopes: options.scope,
        environment: options.env,
        role: options.role,
        audience: options.audience,
      }
      const given = Object.values(require).some((value) => value !== undefined)
      const result = await session.trpc.token.verify.mutate({
        token: key,
        ...(given ? { require } : {}),
        ...(options.clientIp !== undefined && { clientIp: options.clientIp }),
        ...(options.cost !== undefined && { cost: options.cost }),
      })
      session.print(result, showVerify)
      if (!result.valid) session.exitWith(EXIT.denied)
    })
}

/** What commander hands the actions; `choices` has checked the enumerations. */
interface IssueOptions {
  name: string
  env: IssueInput['environment']
  role?: IssueInput['role']
  scope?: string[]
  expiresIn?: IssueInput['expiresIn']
  expiresAt?: string
  detail?: string
  account?: string
  meta?: Record<string, unknown> | null
  cidr?: string[]
  credits?: number
  refill?: Refill
}

interface UpdateOptions {
  name?: string
  detail?: string
  scope?: string[]
  /** false with --no-scopes. */
  scopes?: boolean
  meta?: Record<string, unknown> | null
  cidr?: string[]
  anyNetwork?: boolean
  expiresAt?: string
  /** false with --no-credits. */
  credits?: number | false
  refill?: Refill
}

type Refill = { amount: number; interval: 'day' | 'month' }

/** `--refill 100/day`: the amount and the interval (`day` or `month`). */
function refill(value: string): Refill {
  const match = /^(\d+)\/(day|month)$/.exec(value)
  if (!match) throw new InvalidArgumentError('expected amount/day or amount/month, e.g. 100/day')
  return { amount: Number(match[1]), interval: match[2] as Refill['interval'] }
}

/** The credits of --credits and --refill; null for --no-credits (token.update removes them). */
function creditsOf(options: Pick<UpdateOptions, 'credits' | 'refill'>): UpdateInput['credits'] {
  if (options.credits === false) {
    if (options.refill) throw new CliError('give --refill with --credits, not with --no-credits', EXIT.usage)
    return null
  }
  if (options.credits === undefined) {
    if (options.refill) throw new CliError('--refill needs --credits (the credits to start with)', EXIT.usage)
    return undefined
  }
  return { remaining: options.credits, ...(options.refill && { refill: options.refill }) }
}

interface ListOptions extends PagingOptions {
  env?: ListInput['environment']
  status?: ListInput['status']
  expiring?: number
  unused?: number
  account?: string
}

interface VerifyOptions {
  clientIp?: string
  cost?: number
  scope?: string[]
  env?: Requirements['environment']
  role?: Requirements['role']
  audience?: string
}

/** The plaintext goes to stdout once; the warning to stderr, so `--json | jq -r .token` works. */
function printIssued(session: Session, issued: IssuedToken): void {
  session.print(issued, (key) =>
    details([
      ['id', key.id],
      ['name', key.name],
      ['account', key.accountId],
      ['environment', key.environment],
      ['role', key.role],
      ['scopes', list(key.scopes)],
      ...(key.allowedCidrs.length > 0 ? [['networks', list(key.allowedCidrs)] as [string, string]] : []),
      ['expires', date(key.expiresAt, 'never')],
      ['created', date(key.createdAt)],
      ...(key.rotatedFrom ? [['rotated from', key.rotatedFrom] as [string, string]] : []),
      ...(key.credits ? [['credits', showCredits(key.credits)] as [string, string]] : []),
    ]).concat(`\n${key.token}\n`),
  )
  session.note('this is the only time the key is shown: store it now, it will not be shown again')
}

function showCredits(credits: NonNullable<TokenInfo['credits']>): string {
  const refills = credits.refill ? `, back to ${credits.refill.amount} every ${credits.refill.interval} (UTC)` : ''
  return `${credits.remaining}${refills}`
}

function showKey(key: TokenInfo): string {
  return details([
    ['id', key.id],
    ['name', key.name],
    ['detail', text(key.detail)],
    ['account', key.accountId],
    ['start', `${key.start}…`],
    ['environment', key.environment],
    ['role', key.role],
    ['scopes', list(key.scopes)],
    ['status', key.status],
    ['created', date(key.createdAt)],
    ['expires', date(key.expiresAt, 'never')],
    ['last used', date(key.lastUsedAt, 'never')],
    ['revoked', date(key.revokedAt)],
    ['rotated from', text(key.rotatedFrom)],
    ['networks', key.allowedCidrs.length > 0 ? list(key.allowedCidrs) : 'any'],
    ['meta', key.meta === null ? '-' : JSON.stringify(key.meta)],
    ...(key.credits ? [['credits', showCredits(key.credits)] as [string, string]] : []),
  ])
}

/** `--meta`'s JSON; `null` (update only) removes the meta. The schema judges the rest. */
function parseMeta(value: string): Record<string, unknown> | null {
  try {
    return JSON.parse(value) as Record<string, unknown> | null
  } catch {
    throw new InvalidArgumentError(`expected JSON, such as '{"plan":"gold"}'`)
  }
}

function showVerify(result: VerifyResult): string {
  if (!result.valid) {
    return details([
      ['denied', result.reason],
      ...(result.missingScopes ? [['missing scopes', list(result.missingScopes)] as [string, string]] : []),
      ...(result.retryAfterMs !== undefined ? [['retry after', `${result.retryAfterMs} ms`] as [string, string]] : []),
      ...(result.remaining !== undefined ? [['credits left', String(result.remaining)] as [string, string]] : []),
    ])
  }
  return details([
    ['valid', result.kind],
    ['key', `${result.tokenId} (${result.name})`],
    ['account', result.accountId],
    ['environment', result.environment],
    ['role', result.role ?? '-'],
    ['scopes', list(result.scopes)],
    ['expires', date(result.expiresAt, 'never')],
    ...(result.kind === 'access_key' && result.meta ? [['meta', JSON.stringify(result.meta)] as [string, string]] : []),
    ...(result.kind === 'access_key' && result.remaining !== undefined
      ? [['credits left', String(result.remaining)] as [string, string]]
      : []),
    ...(result.kind === 'derived' ? [['audience', result.audience] as [string, string]] : []),
  ])
}

/** Non-empty lines, trimmed, with their line numbers (for the human report). */
function readLines(file: string): { line: number; value: string }[] {
  let content: string
  try {
    content = readFileSync(file === '-' ? 0 : file, 'utf8')
  } catch (error) {
    throw new CliError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`, EXIT.usage)
  }
  return content
    .split(/\r?\n/)
    .map((value, index) => ({ line: index + 1, value: value.trim() }))
    .filter((entry) => entry.value !== '')
}
