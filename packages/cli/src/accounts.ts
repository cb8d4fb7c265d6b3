import type { RouterOutputs } from '@tokend/auth'
import { type Command, Option } from 'commander'
import { examples, type PagingOptions, pages, withPaging } from './commands.ts'
import { date, details, table } from './output.ts'
import { type Context, Session } from './session.ts'

type Account = RouterOutputs['account']['create']

/** `tokend accounts …` (account.create, list, setStatus): for the operator account's keys. */
export function registerAccounts(program: Command, context: Context): void {
  const accounts = program
    .command('accounts')
    .description('create, list, suspend and reactivate accounts (operator keys only)')
    .addHelpText('after', examples(['tokend accounts list', 'tokend accounts create --name acme --plan paid']))

  accounts
    .command('create')
    .description('create an account (operator admin)')
    .requiredOption('--name <name>', "the account's name")
    .addOption(new Option('--plan <plan>', 'trial (test keys only) or paid').choices(['trial', 'paid']))
    .addHelpText(
      'after',
      examples(['tokend accounts create --name acme --plan paid', 'tokend accounts create --name trial-co']),
    )
    .action(async (options: { name: string; plan?: 'trial' | 'paid' }, command: Command) => {
      const session = new Session(command, context)
      session.print(await session.trpc.account.create.mutate({ name: options.name, plan: options.plan }), showAccount)
    })

  withPaging(accounts.command('list').description('list accounts (operator admin or manager)'))
    .addHelpText('after', examples(['tokend accounts list', 'tokend accounts list --all --json']))
    .action(async (options: PagingOptions, command: Command) => {
      const session = new Session(command, context)
      const result = await pages(
        (cursor) => session.trpc.account.list.query({ limit: options.limit ?? 50, cursor }),
        options.cursor,
        options.all,
      )
      session.print(result, (page) =>
        table(
          ['ID', 'NAME', 'PLAN', 'STATUS', 'OPERATOR', 'CREATED'],
          page.items.map((account) => [
            account.id,
            account.name,
            account.plan,
            account.status,
            account.operator ? 'yes' : 'no',
            date(account.createdAt),
          ]),
          '(no accounts)',
        ),
      )
      session.more(result)
    })

  for (const [name, status, description] of [
    ['suspend', 'suspended', 'suspend an account: every one of its keys stops working at once (operator admin)'],
    ['reactivate', 'active', 'reactivate a suspended account: its keys work again (operator admin)'],
  ] as const) {
    accounts
      .command(name)
      .description(description)
      .argument('<accountId>', 'the account id (acc_…)')
      .addHelpText('after', examples([`tokend accounts ${name} acc_01JB8M3ZB2K3`]))
      .action(async (accountId: string, _options: object, command: Command) => {
        const session = new Session(command, context)
        session.print(await session.trpc.account.setStatus.mutate({ accountId, status }), showAccount)
      })
  }
}

function showAccount(account: Account): string {
  return details([
    ['id', account.id],
    ['name', account.name],
    ['plan', account.plan],
    ['status', account.status],
    ['operator', account.operator ? 'yes' : 'no'],
    ['created', date(account.createdAt)],
  ])
}
