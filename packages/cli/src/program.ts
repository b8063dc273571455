import { Command, CommanderError } from 'commander'

import { registerConversationsCommand } from './commands/conversations.js'
import { registerDeadLettersCommand } from './commands/dead-letters.js'
import { example } from './commands/help-text.js'
import { registerLoadCommand } from './commands/load.js'
import { registerMessageCommand } from './commands/message.js'
import { registerMessagesCommand } from './commands/messages.js'
import { registerMetricsCommand } from './commands/metrics.js'
import { registerMigrateCommand } from './commands/migrate.js'
import { registerMockProviderCommand } from './commands/mock-provider.js'
import { registerReceiveCommand } from './commands/receive.js'
import { registerSendCommand } from './commands/send.js'
import { registerServeCommand } from './commands/serve.js'
import { formatErrorReport } from './format/error-report.js'
import { errColors, processOutput, type CliOutput } from './output.js'
import { version } from './version.js'

/**
 * How `parley` exits: 0 when the command did what was asked, 1 when it
 * failed (the server refused, or could not be reached), 2 when the command
 * line itself was wrong.
 */
export type ExitCode = 0 | 1 | 2

/**
 * Builds the `parley` program. Each command lives in its own file under
 * `commands/` and registers itself here. Commander never exits the process:
 * its usage errors are thrown as `CommanderError`, which `run` turns into
 * exit code 2.
 *
 * @param output - where commands and help write; the process streams by
 *   default.
 */
export function createProgram(output: CliOutput = processOutput): Command {
  const program = new Command('parley')
    .description('Parley: SMS, MMS and email through one API')
    .version(version, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeOut: (text: string) => output.out(text),
      writeErr: (text: string) => output.err(text),
    })
    .configureHelp({ subcommandTerm })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nEvery command takes --help, with an example. Exit status: 0 done,\n' +
        '1 failed (the server refused or could not be reached), 2 bad usage.\n' +
        example(
          '$ parley serve &\n' +
            '$ parley send sms --from +15550001111 --to +15550002222 --body hi\n' +
            '$ parley conversations',
        ),
    )

  // Subcommands copy the settings above when they are created, so these
  // come after them.
  registerServeCommand(program, output)
  registerMigrateCommand(program, output)
  registerSendCommand(program, output)
  registerReceiveCommand(program, output)
  registerConversationsCommand(program, output)
  registerMessagesCommand(program, output)
  registerMessageCommand(program, output)
  registerMetricsCommand(program, output)
  registerDeadLettersCommand(program, output)
  registerLoadCommand(program, output)
  registerMockProviderCommand(program, output)
  return program
}

// The command list names each command with its arguments only: every
// command has options, and leaving out "[options]" keeps each description
// on one line.
function subcommandTerm(command: Command): string {
  const args = command.registeredArguments.map((argument) => {
    const name = argument.name() + (argument.variadic ? '...' : '')
    return argument.required ? `<${name}>` : `[${name}]`
  })
  const subcommands = command.commands.length > 0 ? ['<command>'] : []
  return [command.name(), ...args, ...subcommands].join(' ')
}

/**
 * Runs `parley` with a full argument vector (`process.argv`: the node
 * binary, the script, then the arguments) and returns the exit code rather
 * than exiting, so that output is flushed and embedders keep control.
 *
 * @example
 * process.exitCode = await run(process.argv)
 */
export async function run(
  argv: readonly string[],
  output: CliOutput = processOutput,
): Promise<ExitCode> {
  try {
    await createProgram(output).parseAsync([...argv], { from: 'node' })
    return 0
  } catch (error) {
    return reportFailure(error, output)
  }
}

function reportFailure(error: unknown, output: CliOutput): ExitCode {
  // Commander has already printed its message (or the help/version text).
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2

  output.err(formatErrorReport(error, errColors(output)))
  return 1
}
