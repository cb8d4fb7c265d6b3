import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline/promises'
import { Writable } from 'node:stream'
import type { RouterInputs, RouterOutputs } from '@tokend/auth'
import { Argument, type Command, Option } from 'commander'
import { examples, type PagingOptions, pages, withPaging } from './commands.ts'
import { CliError, EXIT } from './errors.ts'
import { date, details, table } from './output.ts'
import { type Context, Session } from './session.ts'

type User = RouterOutputs['user']['create']
type Role = RouterInputs['user']['setRole']['role']

const ROLES = ['admin', 'manager']

interface CreateOptions {
  username: string
  email: string
  role?: Role
  account?: string
  passwordStdin?: boolean
}

interface ListOptions extends PagingOptions {
  account?: string
}

/** `tokend users …` (user.create, list, setRole, remove): the people who sign in to an account. */
export function registerUsers(program: Command, context: Context): void {
  const users = program
    .command('users')
    .description('add, list, change and remove the people who sign in to an account')
    .addHelpText(
      'after',
      examples(['tokend users list', 'tokend users create --username alice --email alice@example.com']),
    )

  users
    .command('create')
    .description('add a user; the password is read from stdin or a prompt, never from the command line')
    .requiredOption('--username <name>', 'what they sign in with (3–64 letters, digits and . _ @ + -)')
    .requiredOption('--email <address>', 'their email address')
    .addOption(new Option('--role <role>', 'admin or manager (default manager)').choices(ROLES))
    .option('--password-stdin', 'read the password from stdin (its first line) instead of prompting')
    .option('--account <accountId>', 'add the user to this account (operator admins only)')
    .addHelpText(
      'after',
      examples([
        '# prompts for the password twice, without echo:',
        'tokend users create --username alice --email alice@example.com --role admin',
        '# in a script (the password stays out of shell history and ps):',
        'tokend users create --username bob --email bob@example.com --password-stdin < bob.password',
      ]),
    )
    .action(async (options: CreateOptions, command: Command) => {
      const session = new Session(command, context)
      // Read the key first: no point typing a password for a call that cannot be made.
      const trpc = session.trpc
      const password = options.passwordStdin ? passwordFromStdin() : await promptPassword()
      const user = await trpc.user.create.mutate({
        username: options.username,
        email: options.email,
        password,
        role: options.role,
        accountId: options.account,
      })
      session.print(user, showUser)
    })

  withPaging(
    users
      .command('list')
      .description("list users (your account's, or --account's for operator keys)")
      .option('--account <accountId>', "another account's users (operator keys only)"),
  )
    .addHelpText('after', examples(['tokend users list', 'tokend users list --account acc_01JB8M3ZB2K3 --all --json']))
    .action(async (options: ListOptions, command: Command) => {
      const session = new Session(command, context)
      const result = await pages(
        (cursor) => session.trpc.user.list.query({ limit: options.limit ?? 50, cursor, accountId: options.account }),
        options.cursor,
        options.all,
      )
      session.print(result, (page) =>
        table(
          ['ID', 'USERNAME', 'EMAIL', 'ROLE', 'CREATED'],
          page.items.map((user) => [user.id, user.username, user.email, user.role, date(user.createdAt)]),
          '(no users)',
        ),
      )
      session.more(result)
    })

  users
    .command('set-role')
    .description("change a user's role; their sessions carry the new role at once")
    .argument('<id>', 'the user id (usr_…)')
    .addArgument(new Argument('<role>', 'admin or manager').choices(ROLES))
    .addHelpText('after', examples(['tokend users set-role usr_01JB8M3ZB2K3 admin']))
    .action(async (id: string, role: Role, _options: object, command: Command) => {
      const session = new Session(command, context)
      session.print(await session.trpc.user.setRole.mutate({ id, role }), showUser)
    })

  users
    .command('remove')
    .description('remove a user; their sessions stop working at once (an account keeps one admin)')
    .argument('<id>', 'the user id (usr_…)')
    .addHelpText('after', examples(['tokend users remove usr_01JB8M3ZB2K3']))
    .action(async (id: string, _options: object, command: Command) => {
      const session = new Session(command, context)
      session.print(
        await session.trpc.user.remove.mutate({ id }),
        (removed) => `removed ${removed.id} at ${date(removed.removedAt)}\n`,
      )
    })
}

function showUser(user: User): string {
  return details([
    ['id', user.id],
    ['username', user.username],
    ['email', user.email],
    ['role', user.role],
    ['account', user.accountId],
    ['created', date(user.createdAt)],
  ])
}

/** The first line of stdin, as given (spaces are part of a password); only the line break goes. */
function passwordFromStdin(): string {
  let input: string
  try {
    input = readFileSync(0, 'utf8')
  } catch (error) {
    throw new CliError(`cannot read stdin (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`, EXIT.usage)
  }
  const password = input.split(/\r?\n/)[0] ?? ''
  if (password === '') throw new CliError('no password on stdin', EXIT.usage)
  return password
}

/** Asks twice on the terminal, without echo; refuses to guess when there is no terminal. */
async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new CliError('no terminal to ask for the password: give it on stdin with --password-stdin', EXIT.usage)
  }
  const password = await askHidden('password: ')
  if (password === '') throw new CliError('no password given', EXIT.usage)
  if ((await askHidden('password again: ')) !== password) {
    throw new CliError('the two passwords differ', EXIT.usage)
  }
  return password
}

/** readline echoes what is typed to its output; a muted one keeps the password off the screen. */
async function askHidden(question: string): Promise<string> {
  process.stderr.write(question)
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() })
  const reader = createInterface({ input: process.stdin, output: muted, terminal: true })
  try {
    return await new Promise<string>((resolve, reject) => {
      reader.on('SIGINT', () => reject(new CliError('cancelled', EXIT.denied)))
      reader.question('').then(resolve, reject)
    })
  } finally {
    reader.close()
    process.stderr.write('\n')
  }
}
