import { Option, type Command } from 'commander'

import { collect, parseIdempotencyKey, parseTimestamp } from './parsers.js'

/** The kinds of message `parley send` sends and `parley receive` fakes. */
export type MessageKind = 'sms' | 'mms' | 'email'

/** Every kind, in the order commands list them. */
export const messageKinds: readonly MessageKind[] = ['sms', 'mms', 'email']

/** The message options of `send` and `receive`, as commander parses them. */
export interface MessageOptions {
  from: string
  to: string
  body?: string
  subject?: string
  attach?: string[]
  timestamp?: string
  idempotencyKey?: string
}

/** What sets the options of one kind of message apart. */
interface KindSpec {
  /** What `--from` and `--to` hold. */
  address: string
  /** Makes the `--body` option, required or not. */
  body: () => Option
  attachRequired: boolean
  hasSubject: boolean
}

const kinds: Record<MessageKind, KindSpec> = {
  sms: {
    address: 'phone number',
    body: () => required(new Option('--body <text>', 'the message text')),
    attachRequired: false,
    hasSubject: false,
  },
  mms: {
    address: 'phone number',
    body: () =>
      new Option('--body <text>', 'the text sent with the media, if any'),
    attachRequired: true,
    hasSubject: false,
  },
  email: {
    address: 'address',
    body: () =>
      required(
        new Option('--body <html>', 'the body; HTML is kept byte for byte'),
      ),
    attachRequired: false,
    hasSubject: true,
  },
}

/**
 * Adds the options that describe a message of `kind`: --from, --to, the
 * subject of an email, --body, --attach, --timestamp and --idempotency-key.
 */
export function addMessageOptions(
  command: Command,
  kind: MessageKind,
): Command {
  const spec = kinds[kind]
  command
    .addOption(
      required(new Option('--from <from>', `the sender's ${spec.address}`)),
    )
    .addOption(
      required(new Option('--to <to>', `the recipient's ${spec.address}`)),
    )
    .hook('preAction', requireMandatory)

  if (spec.hasSubject) command.option('--subject <text>', 'the subject line')
  return command
    .addOption(spec.body())
    .addOption(attachOption(spec.attachRequired))
    .option(
      '--timestamp <iso>',
      'when it was written, ISO-8601 (default: now)',
      parseTimestamp,
    )
    .option(
      '--idempotency-key <key>',
      'a key that makes running the same command again harmless',
      parseIdempotencyKey,
    )
}

function attachOption(required: boolean): Option {
  const option = new Option(
    '--attach <url>',
    'an http(s) URL to attach; repeat for several',
  ).argParser(collect)
  return required ? markRequired(option) : option
}

// Commander checks mandatory options before unknown ones, so that
// `send sms --bogus` would complain of a missing --from. These options are
// checked in a preAction hook instead, which runs after the unknown-option
// check.
const mandatory = new WeakSet<Option>()

function markRequired(option: Option): Option {
  mandatory.add(option)
  return option
}

const required = markRequired

function requireMandatory(command: Command): void {
  for (const option of command.options) {
    if (!mandatory.has(option)) continue
    if (command.getOptionValue(option.attributeName()) !== undefined) continue
    command.error(`error: required option '${option.flags}' not specified`, {
      exitCode: 2,
      code: 'commander.missingMandatoryOptionValue',
    })
  }
}

/**
 * The JSON fields of a message, in the order of DESIGN section 4: `from`,
 * `to`, `type` (SMS and MMS) or `subject` (email, when given), `body`,
 * `attachments` and `timestamp`, which defaults to now.
 */
export function messageFields(
  kind: MessageKind,
  options: MessageOptions,
): Record<string, unknown> {
  const addresses = { from: options.from, to: options.to }
  const content = {
    body: options.body ?? '',
    attachments: options.attach ?? [],
    timestamp: options.timestamp ?? new Date().toISOString(),
  }
  if (kind !== 'email') return { ...addresses, type: kind, ...content }

  const subject =
    options.subject === undefined ? {} : { subject: options.subject }
  return { ...addresses, ...subject, ...content }
}

/**
 * With --idempotency-key, a rerun must send the same body to be replayed;
 * a timestamp defaulting to "now" would differ every time and be refused
 * (422). So the key needs an explicit --timestamp: a usage error (exit 2)
 * otherwise.
 */
export function requireTimestampWithKey(
  options: MessageOptions,
  command: Command,
): void {
  if (options.idempotencyKey === undefined || options.timestamp !== undefined) {
    return
  }
  command.error(
    'error: --idempotency-key needs --timestamp, so that running the command again sends the same message',
    { exitCode: 2, code: 'parley.timestampRequired' },
  )
}

/** The `Idempotency-Key` header, when --idempotency-key was given. */
export function idempotencyHeaders(
  options: MessageOptions,
): Record<string, string> {
  const key = options.idempotencyKey
  return key === undefined ? {} : { 'idempotency-key': key }
}
