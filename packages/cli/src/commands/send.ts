import { Option, type Command } from 'commander'

import type { ApiResponse } from '../api/api-client.js'
import type { AcceptedBody } from '../api/types.js'
import { formatJson } from '../format/json.js'
import { toPrintable } from '../format/printable.js'
import type { CliOutput } from '../output.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import { collect } from './parsers.js'

/** The kinds of message `parley send` can send. */
type SendKind = 'sms' | 'mms' | 'email'

/** The options of `parley send <kind>`, as commander parses them. */
interface SendOptions extends ConnectionOptions {
  from: string
  to: string
  body?: string
  subject?: string
  attach?: string[]
  timestamp?: string
  idempotencyKey?: string
}

/** What sets one kind of send apart from the others. */
interface SendSpec {
  description: string
  route: string
  /** What `--from` and `--to` hold. */
  address: string
  /** Makes the `--body` option, required or not. */
  body: () => Option
  attachRequired: boolean
  hasSubject: boolean
  example: string
}

const specs: Record<SendKind, SendSpec> = {
  sms: {
    description: 'send an SMS',
    route: 'api/messages/sms',
    address: 'phone number',
    body: () =>
      new Option('--body <text>', 'the text to send').makeOptionMandatory(),
    attachRequired: false,
    hasSubject: false,
    example:
      "$ parley send sms --from '+1 555 000 1111' --to +15550002222 \\\n" +
      "    --body 'See you at 6' --idempotency-key order-42",
  },
  mms: {
    description: 'send an MMS (at least one --attach)',
    route: 'api/messages/sms',
    address: 'phone number',
    body: () =>
      new Option('--body <text>', 'the text sent with the media, if any'),
    attachRequired: true,
    hasSubject: false,
    example:
      '$ parley send mms --from +15550001111 --to +15550002222 \\\n' +
      '    --attach https://example.com/a.png --attach https://example.com/b.png',
  },
  email: {
    description: 'send an email',
    route: 'api/messages/email',
    address: 'address',
    body: () =>
      new Option(
        '--body <html>',
        'the body; HTML is kept byte for byte',
      ).makeOptionMandatory(),
    attachRequired: false,
    hasSubject: true,
    example:
      "$ parley send email --from 'Ann <ann@example.com>' \\\n" +
      "    --to bob@example.com --subject Hello --body '<p>Hi Bob</p>'",
  },
}

/** Registers `parley send sms|mms|email` on the program. */
export function registerSendCommand(program: Command, output: CliOutput): void {
  const send = program
    .command('send')
    .description('send a message through a running Parley server')
    .addHelpText('after', example(specs.sms.example))

  for (const kind of ['sms', 'mms', 'email'] as const) {
    addSendKind(send, kind, output)
  }
}

function addSendKind(send: Command, kind: SendKind, output: CliOutput): void {
  const spec = specs[kind]
  const command = send
    .command(kind)
    .description(spec.description)
    .requiredOption('--from <from>', `the sender's ${spec.address}`)
    .requiredOption('--to <to>', `the recipient's ${spec.address}`)

  if (spec.hasSubject) command.option('--subject <text>', 'the subject line')
  command.addOption(spec.body()).addOption(attachOption(spec.attachRequired))
  addDeliveryOptions(command)
  addConnectionOptions(command)
    .addHelpText('after', example(spec.example))
    .action((options: SendOptions) => sendMessage(kind, options, output))
}

function attachOption(required: boolean): Option {
  const option = new Option(
    '--attach <url>',
    'an http(s) URL to attach; repeat for several',
  ).argParser(collect)
  return required ? option.makeOptionMandatory() : option
}

function addDeliveryOptions(command: Command): void {
  command
    .option('--timestamp <iso>', 'when it was written, ISO-8601 (default: now)')
    .option(
      '--idempotency-key <key>',
      'a key that makes running the same send again harmless',
    )
}

async function sendMessage(
  kind: SendKind,
  options: SendOptions,
  output: CliOutput,
): Promise<void> {
  const response = await createClient(options).post<AcceptedBody>(
    specs[kind].route,
    buildRequestBody(kind, options),
    idempotencyHeaders(options),
  )

  output.out(
    options.json ? formatJson(response.body) : formatAccepted(response),
  )
}

// The fields of DESIGN section 4, in its order.
function buildRequestBody(
  kind: SendKind,
  options: SendOptions,
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

function idempotencyHeaders(options: SendOptions): Record<string, string> {
  const key = options.idempotencyKey
  return key === undefined ? {} : { 'idempotency-key': key }
}

function formatAccepted(response: ApiResponse<AcceptedBody>): string {
  const { id, conversation_id: conversationId } = response.body
  const replayed = response.headers.get('idempotent-replayed') === 'true'
  const note = replayed ? '; replayed, it was sent before with this key' : ''
  const line = `accepted message ${id} (conversation ${conversationId}${note})`
  return toPrintable(line) + '\n'
}
