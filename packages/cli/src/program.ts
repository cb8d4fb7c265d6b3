import { Command, CommanderError, Option } from 'commander'
import packageJson from '../package.json' with { type: 'json' }
import { registerAccounts } from './accounts.ts'
import { registerAudit } from './audit.ts'
import { baseUrl, examples } from './commands.ts'
import { completionScript } from './completion.ts'
import { registerDirect } from './direct.ts'
import { CliError, EXIT, explain } from './errors.ts'
import { registerKeys } from './keys.ts'
import { profilePath, removeProfile, writeProfile } from './profile.ts'
import { type Context, DEFAULT_URL, readKey, Session } from './session.ts'
import { registerUsers } from './users.ts'

/** The whole command tree; actions read the environment and report exit codes through `context`. */
export function buildProgram(context: Context): Command {
  const program = new Command('tokend')
    .description(
      "tokend's command line: manage accounts, access keys, users and direct links, verify keys, read the audit log",
    )
    .version(packageJson.version, '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addOption(
      new Option('--url <url>', `tokend's base URL (default: the one saved by tokend login, else ${DEFAULT_URL})`)
        .env('TOKEND_URL')
        .argParser(baseUrl),
    )
    .addOption(new Option('--key-file <path>', 'read your key from this file (else TOKEND_KEY)').env('TOKEND_KEY_FILE'))
    .option('--json', "print the procedure's raw output as one JSON document")
    .addHelpText(
      'after',
      examples([
        'export TOKEND_KEY=$(cat .data/tokend/bootstrap.key)',
        'tokend keys issue --name voice-api --env live --scope tokend:verify',
        'tokend keys list --status active',
        'tokend verify "$KEY" --scope recordings:read',
      ]).concat(
        '\nExit codes: 0 ok, 1 verify denied, 2 usage or invalid input, 3 no key / unauthorized / forbidden,\n' +
          '4 not found, 5 conflict or limit, 6 tokend unreachable or unavailable.\n',
      ),
    )

  registerKeys(program, context)
  registerAccounts(program, context)
  registerUsers(program, context)
  registerDirect(program, context)
  registerAudit(program, context)

  program
    .command('login')
    .description(
      `check a key against tokend, then keep it and the URL in ${profilePath(context.env).replace(context.env.HOME ?? '\0', '~')} (mode 0600)`,
    )
    .addHelpText(
      'after',
      examples([
        'tokend --url http://tokend.internal:3000 login --key-file ops.key',
        'TOKEND_KEY=$(cat .data/tokend/bootstrap.key) tokend login',
      ]),
    )
    .action(async (_options: object, command: Command) => {
      const session = new Session(command, context)
      const me = await session.trpc.me.query()
      const { url } = session.globals
      const path = writeProfile(context.env, { url, key: readKey(session.globals.keyFile, context.env.TOKEND_KEY) })
      session.print(
        { url, path, accountId: me.accountId, role: me.role },
        () => `logged in to ${url} (account ${me.accountId}, ${me.role}); saved in ${path}\n`,
      )
    })

  program
    .command('logout')
    .description('forget the URL and key saved by tokend login')
    .addHelpText('after', examples(['tokend logout']))
    .action(() => {
      process.stdout.write(`removed ${removeProfile(context.env)}\n`)
    })

  program
    .command('completion')
    .description('print a shell completion script')
    .argument('<shell>', 'bash or zsh')
    .addHelpText('after', examples(['tokend completion bash >> ~/.bashrc', 'tokend completion zsh >> ~/.zshrc']))
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new CliError('completion is for bash or zsh', EXIT.usage)
      process.stdout.write(completionScript(program, shell))
    })

  program
    .command('whoami')
    .description('show the key you are using (me)')
    .addHelpText('after', examples(['tokend whoami', 'tokend --key-file ops.key whoami --json']))
    .action(async (_options: object, command: Command) => {
      const session = new Session(command, context)
      const me = await session.trpc.me.query()
      session.print(me, (principal) =>
        [
          principal.kind === 'access_key'
            ? `${principal.tokenId} (${principal.name}), ${principal.environment}`
            : `session ${principal.sessionId} (${principal.username})`,
          `account ${principal.accountId}${principal.operator ? ' (operator)' : ''}, ${principal.role}`,
          `scopes ${principal.scopes.join(',') || '-'}`,
        ]
          .join('\n')
          .concat('\n'),
      )
    })
  return program
}

/**
 * Runs one command line and resolves with the exit code. Errors become one line on
 * stderr (tokend's message and reason), never a stack trace.
 */
export async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const context: Context = { env, exitCode: EXIT.ok }
  const program = buildProgram(context)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return context.exitCode
  } catch (error) {
    // commander has already printed its message (or the help) by now.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage
    const failure = explain(error, context.url ?? program.opts<{ url?: string }>().url ?? DEFAULT_URL)
    process.stderr.write(`tokend: error: ${failure.message}${failure.reason ? ` [${failure.reason}]` : ''}\n`)
    return failure.exitCode
  }
}
