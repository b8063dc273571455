import type { Command } from 'commander'

import type { ApiResponse } from '../api/api-client.js'
import type { AcceptedBody } from '../api/types.js'
import { formatJson } from '../format/json.js'
import { toPrintable } from '../format/printable.js'
import type { CliOutput } from '../output.js'
import { createClient } from './connection-options.js'
import {
  registerMessageKindCommands,
  type KindHelp,
  type MessageCommandOptions,
} from './message-kind-commands.js'
import {
  idempotencyHeaders,
  messageFields,
  type MessageKind,
} from './message-options.js'

/** The options of `parley send <kind>`, as commander parses them. */
interface SendOptions extends MessageCommandOptions {}

/** What sets one kind of send apart from the others. */
interface SendSpec extends KindHelp {
  route: string
}

const specs: Record<MessageKind, SendSpec> = {
  sms: {
    description: 'send an SMS',
    route: 'api/messages/sms',
    example:
      "$ parley send sms --from '+1 555 000 1111' --to +15550002222 \\\n" +
      "    --body 'See you at 6' --idempotency-key order-42",
  },
  mms: {
    description: 'send an MMS (at least one --attach)',
    route: 'api/messages/sms',
    example:
      '$ parley send mms --from +15550001111 --to +15550002222 \\\n' +
      '    --attach https://example.com/a.png --attach https://example.com/b.png',
  },
  email: {
    description: 'send an email',
    route: 'api/messages/email',
    example:
      "$ parley send email --from 'Ann <ann@example.com>' \\\n" +
      "    --to bob@example.com --subject Hello --body '<p>Hi Bob</p>'",
  },
}

/** Registers `parley send sms|mms|email` on the program. */
export function registerSendCommand(program: Command, output: CliOutput): void {
  registerMessageKindCommands<SendOptions>(
    program,
    {
      name: 'send',
      description: 'send an SMS, MMS or email through the server',
      kinds: specs,
      run: sendMessage,
    },
    output,
  )
}

async function sendMessage(
  kind: MessageKind,
  options: SendOptions,
  output: CliOutput,
): Promise<void> {
  const response = await createClient(options).post<AcceptedBody>(
    specs[kind].route,
    messageFields(kind, options),
    idempotencyHeaders(options),
  )

  output.out(
    options.json ? formatJson(response.body) : formatAccepted(response),
  )
}

function formatAccepted(response: ApiResponse<AcceptedBody>): string {
  const { id, conversation_id: conversationId } = response.body
  const replayed = response.headers.get('idempotent-replayed') === 'true'
  const note = replayed ? '; replayed, it was sent before with this key' : ''
  const line = `accepted message ${id} (conversation ${conversationId}${note})`
  return toPrintable(line) + '\n'
}
