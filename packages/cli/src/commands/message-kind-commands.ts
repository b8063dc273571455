import type { Command } from 'commander'

import type { CliOutput } from '../output.js'
import {
  addConnectionOptions,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import {
  addMessageOptions,
  messageKinds,
  requireTimestampWithKey,
  type MessageKind,
  type MessageOptions,
} from './message-options.js'

/** The options every subcommand of `send` and `receive` takes. */
export interface MessageCommandOptions
  extends ConnectionOptions, MessageOptions {}

/** What the help of one kind's subcommand says. */
export interface KindHelp {
  description: string
  example: string
}

/** How to build `parley <name> sms|mms|email`. */
export interface MessageKindCommands<Options> {
  /** The command's name, such as `send`. */
  name: string
  description: string
  /** The help of each kind; the parent's help shows the SMS example. */
  kinds: Record<MessageKind, KindHelp>
  /**
   * Text put under each kind's help, before its example.
   * @default none
   */
  helpAfter?: string
  /** Adds the command's own options, between the message and connection ones. */
  addOptions?: (command: Command) => void
  /** Does the work of one kind, once the options are checked. */
  run: (kind: MessageKind, options: Options, output: CliOutput) => Promise<void>
}

/**
 * Registers a command with one subcommand per message kind, each taking the
 * message options of its kind and the connection options. `send` and
 * `receive` are built alike, so that their options and help stay in step.
 */
export function registerMessageKindCommands<
  Options extends MessageCommandOptions,
>(
  program: Command,
  spec: MessageKindCommands<Options>,
  output: CliOutput,
): void {
  const parent = program
    .command(spec.name)
    .description(spec.description)
    .addHelpText('after', example(spec.kinds.sms.example))

  for (const kind of messageKinds) addKind(parent, kind, spec, output)
}

function addKind<Options extends MessageCommandOptions>(
  parent: Command,
  kind: MessageKind,
  spec: MessageKindCommands<Options>,
  output: CliOutput,
): void {
  const help = spec.kinds[kind]
  const command = parent.command(kind).description(help.description)
  addMessageOptions(command, kind)
  spec.addOptions?.(command)
  addConnectionOptions(command)
    .addHelpText('after', (spec.helpAfter ?? '') + example(help.example))
    .action((options: Options, command: Command) => {
      requireTimestampWithKey(options, command)
      return spec.run(kind, options, output)
    })
}
