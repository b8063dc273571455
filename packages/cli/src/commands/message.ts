import type { Command } from 'commander'

import type { MessageDetail } from '../api/types.js'
import { UnexpectedResponseError } from '../errors.js'
import { formatJson } from '../format/json.js'
import { formatKeyValues, type KeyValue } from '../format/key-values.js'
import { statusStyle } from '../format/status-style.js'
import { hintNotFound } from '../errors.js'
import { outColors, type CliOutput, type Colors } from '../output.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import { parseId } from './parsers.js'

/** Registers `parley message <id>` on the program. */
export function registerMessageCommand(
  program: Command,
  output: CliOutput,
): void {
  const command = program
    .command('message')
    .description('show one message: status, attempts, last error')
    .argument(
      '<id>',
      'the message, by id (as `send` or `messages` shows it)',
      parseId,
    )
  addConnectionOptions(command)
    .addHelpText(
      'after',
      example('$ parley message 12\n$ parley message 12 --json'),
    )
    .action((id: string, options: ConnectionOptions) =>
      showMessage(id, options, output),
    )
}

async function showMessage(
  id: string,
  options: ConnectionOptions,
  output: CliOutput,
): Promise<void> {
  // parseId allows digits only, so the id cannot change the path.
  const response = await hintNotFound(
    createClient(options).get<unknown>(`api/messages/${id}`),
    "list a conversation's messages with `parley messages <conversation-id>`",
  )
  const message = checkMessage(response.body, options.url)

  output.out(
    options.json
      ? formatJson(message)
      : formatMessage(message, outColors(output)),
  )
}

function checkMessage(body: unknown, url: string): MessageDetail {
  const { id, status } = (body ?? {}) as Partial<MessageDetail>
  if (typeof id === 'string' && typeof status === 'string') {
    return body as MessageDetail
  }
  throw new UnexpectedResponseError(url, 200, 'not a message')
}

/** A message as people read it: a heading line, then aligned fields. */
export function formatMessage(message: MessageDetail, colors: Colors): string {
  const heading =
    `message ${message.id}: ${message.direction} ${message.channel}, ` +
    `conversation ${message.conversation_id}`
  const lines = formatKeyValues(messageFields(message, colors), colors.dim)
  return `${colors.bold(heading)}\n${lines}\n`
}

function messageFields(message: MessageDetail, colors: Colors): KeyValue[] {
  const fields: KeyValue[] = [
    { label: 'status', value: message.status, style: statusStyle(colors) },
    { label: 'attempts', value: String(message.attempts) },
    { label: 'provider', value: message.provider ?? '-' },
    { label: 'provider id', value: message.provider_message_id ?? '-' },
    { label: 'next attempt', value: message.next_attempt_at ?? '-' },
    {
      label: 'last error',
      value: message.last_error ?? '-',
      style: message.last_error === null ? undefined : colors.red,
    },
    { label: 'from', value: message.from },
    { label: 'to', value: message.to },
    { label: 'timestamp', value: message.timestamp },
  ]
  if (typeof message.subject === 'string') {
    fields.push({ label: 'subject', value: message.subject })
  }
  const attachments = message.attachments ?? []
  if (attachments.length > 0) {
    fields.push({ label: 'attachments', value: attachments.join(' ') })
  }
  fields.push({ label: 'body', value: message.body })
  return fields
}
