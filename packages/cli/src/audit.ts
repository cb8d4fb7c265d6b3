import type { Command } from 'commander'
import { examples, type PagingOptions, pages, pastTime, withPaging } from './commands.ts'
import { date, table, text } from './output.ts'
import { type Context, Session } from './session.ts'

interface AuditOptions extends PagingOptions {
  actor?: string
  target?: string
  action?: string
  since?: string
  until?: string
  account?: string
}

/** `tokend audit list` (audit.list): who did what to which object, newest first. */
export function registerAudit(program: Command, context: Context): void {
  const audit = program
    .command('audit')
    .description('read the audit log (admin keys: your account; operator admins: every account)')
    .addHelpText('after', examples(['tokend audit list --since 1d']))

  withPaging(
    audit
      .command('list')
      .description('list audit events, newest first')
      .option('--actor <id>', 'only events by this key (tok_…)')
      .option('--target <id>', 'only events about this object (tok_…, acc_…)')
      .option('--action <action>', 'only this action, e.g. token.revoke')
      .option('--since <when>', 'from this ISO-8601 time, or this long ago (30m, 24h, 7d)', pastTime)
      .option('--until <when>', 'up to this ISO-8601 time, or this long ago', pastTime)
      .option('--account <accountId>', "another account's events (operator admins only)"),
  )
    .addHelpText(
      'after',
      examples([
        'tokend audit list --since 7d --action token.revoke',
        'tokend audit list --target tok_01JB8M3ZB2K3 --all --json',
      ]),
    )
    .action(async (options: AuditOptions, command: Command) => {
      const session = new Session(command, context)
      const result = await pages(
        (cursor) =>
          session.trpc.audit.list.query({
            actorId: options.actor,
            targetId: options.target,
            action: options.action,
            since: options.since,
            until: options.until,
            accountId: options.account,
            limit: options.limit ?? 50,
            cursor,
          }),
        options.cursor,
        options.all,
      )
      session.print(result, (page) =>
        table(
          ['TIME', 'ACTION', 'ACTOR', 'TARGET', 'ACCOUNT', 'ADDRESS'],
          page.items.map((event) => [
            date(event.createdAt),
            event.action,
            event.actorId ?? event.actorType,
            text(event.targetId),
            text(event.accountId),
            text(event.address),
          ]),
          '(no events)',
        ),
      )
      session.more(result)
    })
}
