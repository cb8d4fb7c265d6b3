import type { RouterInputs, RouterOutputs } from '@tokend/auth'
import { directTopic } from '@tokend/keys'
import { type Command, Option } from 'commander'
import { examples, type PagingOptions, pages, withPaging } from './commands.ts'
import { date, details, table, text } from './output.ts'
import { type Context, Session } from './session.ts'

type CreateInput = RouterInputs['direct']['create']
type Created = RouterOutputs['direct']['create']

interface CreateOptions {
  resourceType: string
  resourceId: string
  env?: CreateInput['environment']
  account?: string
}

interface ListOptions extends PagingOptions {
  account?: string
}

/** `tokend direct …` (direct.create, list, delete): links that reach one resource without signing in. */
export function registerDirect(program: Command, context: Context): void {
  const direct = program
    .command('direct')
    .description('create, list and delete direct links: a hash that boots a 4-hour token for one resource')
    .addHelpText(
      'after',
      examples(['tokend direct list', 'tokend direct create --resource-type ai --resource-id a1b2']),
    )

  direct
    .command('create')
    .description('create a direct link; its hash is printed once, and only here (admin)')
    .requiredOption('--resource-type <type>', 'the kind of resource, e.g. ai or call_flow')
    .requiredOption('--resource-id <id>', 'the resource it reaches (letters, digits and _ . -)')
    .addOption(
      new Option('--env <environment>', "the environment (default: the account's plan's)").choices(['live', 'test']),
    )
    .option('--account <accountId>', 'create it in this account (operator admins only)')
    .addHelpText(
      'after',
      examples([
        'tokend direct create --resource-type ai --resource-id a1b2c3d4',
        '# keep only the hash (the warning goes to stderr):',
        'HASH=$(tokend direct create --resource-type ai --resource-id a1b2c3d4 --json | jq -r .hash)',
      ]),
    )
    .action(async (options: CreateOptions, command: Command) => {
      const session = new Session(command, context)
      const created = await session.trpc.direct.create.mutate({
        resourceType: options.resourceType,
        resourceId: options.resourceId,
        environment: options.env,
        accountId: options.account,
      })
      // Like a key's plaintext: the hash on stdout once (tokend keeps only its digest), the warning on stderr.
      session.print(created, (link: Created) =>
        details([
          ['id', link.id],
          ['account', link.accountId],
          ['resource', `${link.resourceType} ${link.resourceId}`],
          ['environment', link.environment],
          ['topic', directTopic(link)],
          ['created', date(link.createdAt)],
        ]).concat(`\n${link.hash}\n`),
      )
      session.note('this is the only time the direct hash is shown: store it now, it will not be shown again')
    })

  withPaging(
    direct
      .command('list')
      .description("list direct links (your account's, or --account's for operator keys); never their hashes")
      .option('--account <accountId>', "another account's links (operator keys only)"),
  )
    .addHelpText('after', examples(['tokend direct list', 'tokend direct list --all --json']))
    .action(async (options: ListOptions, command: Command) => {
      const session = new Session(command, context)
      const result = await pages(
        (cursor) => session.trpc.direct.list.query({ limit: options.limit ?? 50, cursor, accountId: options.account }),
        options.cursor,
        options.all,
      )
      session.print(result, (page) =>
        table(
          ['ID', 'TYPE', 'RESOURCE', 'ENV', 'START', 'CREATED BY', 'CREATED', 'TOPIC'],
          page.items.map((link) => [
            link.id,
            link.resourceType,
            link.resourceId,
            link.environment,
            `${link.start}…`,
            text(link.createdBy),
            date(link.createdAt),
            directTopic(link),
          ]),
          '(no direct links)',
        ),
      )
      session.more(result)
    })

  direct
    .command('delete')
    .description('delete a direct link: its hash stops booting, and tokens booted from it stop working (admin)')
    .argument('<id>', 'the direct link id (dir_…)')
    .addHelpText('after', examples(['tokend direct delete dir_01JB8M3ZB2K3']))
    .action(async (id: string, _options: object, command: Command) => {
      const session = new Session(command, context)
      session.print(
        await session.trpc.direct.delete.mutate({ id }),
        (deleted) => `deleted ${deleted.id} at ${date(deleted.deletedAt)}\n`,
      )
    })
}
