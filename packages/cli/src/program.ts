import { Command, CommanderError } from 'commander'

import { registerConversationsCommand } from './commands/conversations.js'
import { registerDeadLettersCommand } from './commands/dead-letters.js'
import { example } from './commands/help-text.js'
import { parseServerUrl } from './commands/parsers.js'
import { registerLoadCommand } from './commands/load.js'
import { registerMessageCommand } from './commands/message.js'
import { registerMessagesCommand } from './commands/messages.js'
import { registerMetricsCommand } from './commands/metrics.js'
import { registerMigrateCommand } from './commands/migrate.js'
import { registerMockProviderCommand } from './commands/mock-provider.js'
import { registerReceiveCommand } from './commands/receive.js'
import { registerSendCommand } from './commands/send.js'
import { registerServeCommand } from './commands/serve.js'
import { UsageError } from './errors.js'
import { errorDocument } from './format/error-document.js'
import { formatErrorReport } from './format/error-report.js'
import { formatJson } from './format/json.js'
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
      // Commander quotes refused values: keep their control characters
      // (an escape sequence in an argument) off the terminal.
      writeErr: (text: string) => output.err(withoutControls(text)),
    })
    .configureHelp({ subcommandTerm })
    .showHelpAfterError('(run with --help for usage)')
    // Options before the command are the program's, after it the
    // command's: `parley --url X messages 1` and `parley messages 1 --url X`
    // both work (see programOptions).
    .enablePositionalOptions()
    .option(
      '--url <url>',
      'base URL of the server, for the command that follows',
      parseServerUrl,
    )
    .option('--api-key <key>', 'API key, for the command that follows')
    .option('--json', 'the command that follows prints one JSON document')
    .hook('preAction', programOptions)
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

// The program's --url, --api-key and --json, given before the command, go
// to the command as if written after it; the command's own win. --url and
// --api-key only suit the commands that call a server (mock-provider's
// --api-key is another key): elsewhere they are a usage error.
function programOptions(program: Command, action: Command): void {
  const given = program.opts<{ url?: string; apiKey?: string; json?: true }>()
  const names = ['url', 'apiKey', 'json'] as const
  const callsServer = action.options.some((option) => option.long === '--url')
  for (const name of names) {
    const value = given[name]
    if (value === undefined) continue
    const suits = name === 'json' ? hasOption(action, '--json') : callsServer
    if (!suits) {
      const flag = name === 'apiKey' ? '--api-key' : `--${name}`
      program.error(`error: ${flag} does not apply to \`${action.name()}\``, {
        exitCode: 2,
        code: 'parley.programOption',
      })
    }
    const source = action.getOptionValueSource(name)
    if (source === 'cli') continue
    action.setOptionValueWithSource(name, value, 'cli')
  }
}

function hasOption(command: Command, long: string): boolean {
  return command.options.some((option) => option.long === long)
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
  const args = argv.slice(2)
  const wantsJson = { value: jsonRequested(args) }
  if (wantsJson.value && isVersionRequest(args)) {
    output.out(formatJson({ version }))
    return 0
  }
  const printed = trackOutput(output)
  try {
    const program = createProgram(printed.output)
    // The command's own reading of --json wins over the scan of argv.
    program.hook('preAction', (_program, action) => {
      wantsJson.value = action.opts().json === true
    })
    await program.parseAsync([...argv], { from: 'node' })
    return 0
  } catch (error) {
    // A command that printed its document (load's summary) keeps it as
    // the only one.
    return reportFailure(error, output, wantsJson.value && !printed.any)
  }
}

// The output, noting whether anything was written to standard output.
function trackOutput(output: CliOutput): { output: CliOutput; any: boolean } {
  const tracked = { output, any: false }
  // A child of the output keeps its getters (columns are read live).
  tracked.output = Object.create(output, {
    out: {
      value: (text: string) => {
        tracked.any = true
        output.out(text)
      },
    },
  }) as CliOutput
  return tracked
}

// Before the command is known (a usage error), any --json before `--`
// asks for JSON.
function jsonRequested(args: readonly string[]): boolean {
  const end = args.indexOf('--')
  return (end === -1 ? args : args.slice(0, end)).includes('--json')
}

function isVersionRequest(args: readonly string[]): boolean {
  const rest = args.filter((arg) => arg !== '--json')
  return rest.length === 1 && (rest[0] === '--version' || rest[0] === '-V')
}

/**
 * Reports a failure: the human report on standard error and, under
 * `--json`, one JSON error document on standard output (docs/cli.md), with
 * the same exit code.
 */
function reportFailure(
  error: unknown,
  output: CliOutput,
  json: boolean,
): ExitCode {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help text).
    if (error.exitCode === 0) return 0
    if (json) output.out(formatJson(errorDocument(error)))
    return 2
  }

  output.err(formatErrorReport(error, errColors(output)))
  if (json) output.out(formatJson(errorDocument(error)))
  return error instanceof UsageError ? 2 : 1
}

// Every C0/C1 control character but tab and line feed, and bidirectional
// overrides, shown as U+FFFD.
function withoutControls(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    '\ufffd',
  )
}
