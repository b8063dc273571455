import { createHash, randomUUID } from 'node:crypto'

import type { Command } from 'commander'

import type { ApiResponse } from '../api/api-client.js'
import type { WebhookAcceptedBody } from '../api/types.js'
import { signWebhook, type WebhookRequest } from '../api/webhook-signing.js'
import { ApiError } from '../errors.js'
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

/** The options of `parley receive <kind>`, as commander parses them. */
interface ReceiveOptions extends MessageCommandOptions {
  providerId?: string
}

/** What sets one kind of inbound webhook apart from the others. */
interface ReceiveSpec extends KindHelp {
  family: WebhookRequest['family']
  route: string
  /** The body field that carries the provider's id for the message. */
  providerIdField: 'messaging_provider_id' | 'xillio_id'
}

const specs: Record<MessageKind, ReceiveSpec> = {
  sms: {
    description: 'post a test inbound SMS webhook',
    family: 'sms',
    route: 'api/webhooks/sms',
    providerIdField: 'messaging_provider_id',
    example:
      '$ parley receive sms --from +15550002222 --to +15550001111 \\\n' +
      "    --body 'Running late'",
  },
  mms: {
    description: 'post a test inbound MMS webhook (at least one --attach)',
    family: 'sms',
    route: 'api/webhooks/sms',
    providerIdField: 'messaging_provider_id',
    example:
      '$ parley receive mms --from +15550002222 --to +15550001111 \\\n' +
      '    --attach https://example.com/photo.jpg --provider-id SM42',
  },
  email: {
    description: 'post a test inbound email webhook',
    family: 'email',
    route: 'api/webhooks/email',
    providerIdField: 'xillio_id',
    example:
      '$ parley receive email --from bob@example.com --to ann@example.com \\\n' +
      "    --subject 'Re: Hello' --body '<p>Thanks!</p>'",
  },
}

const HELP_AFTER =
  '\nThe server stores it as an inbound message from --from to --to and\n' +
  'threads it into its conversation in the background. With\n' +
  'WEBHOOK_SMS_AUTH_TOKEN or WEBHOOK_EMAIL_SECRET in the environment (the\n' +
  'secrets the server checks with) the post is signed as Twilio or a\n' +
  'Standard Webhooks sender would sign it; API_PUBLIC_URL, when set, is\n' +
  'the URL the Twilio signature covers.\n'

/** Registers `parley receive sms|mms|email` on the program. */
export function registerReceiveCommand(
  program: Command,
  output: CliOutput,
): void {
  registerMessageKindCommands<ReceiveOptions>(
    program,
    {
      name: 'receive',
      description: 'post a test inbound webhook, as a provider would',
      kinds: specs,
      helpAfter: HELP_AFTER,
      addOptions: addProviderIdOption,
      run: receiveMessage,
    },
    output,
  )
}

function addProviderIdOption(command: Command): void {
  command.option(
    '--provider-id <id>',
    "the provider's id for the message; the server ignores a second post " +
      'with the same one (default: test-<random uuid>, or one made from ' +
      '--idempotency-key)',
  )
}

async function receiveMessage(
  kind: MessageKind,
  options: ReceiveOptions,
  output: CliOutput,
): Promise<void> {
  const providerId = options.providerId ?? testProviderId(options)
  const webhook = buildWebhook(kind, options, providerId)
  const { path, body, headers } = await signWebhook(webhook, {
    baseUrl: options.url,
    env: process.env,
  })

  const client = createClient(options)
  const response = await hintSignature(
    client.postSerialized<WebhookAcceptedBody>(path, body, headers),
    webhook.family,
  )

  output.out(
    options.json
      ? formatJson(response.body)
      : formatReceived(kind, providerId, response),
  )
}

// Webhooks need no API key: a 401 is the signature, checked with the
// family's secret, which must be set here as on the server.
async function hintSignature<T>(
  work: Promise<T>,
  family: WebhookRequest['family'],
): Promise<T> {
  try {
    return await work
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      const secret =
        family === 'sms' ? 'WEBHOOK_SMS_AUTH_TOKEN' : 'WEBHOOK_EMAIL_SECRET'
      error.hint =
        `the server checks webhook signatures: set ${secret} to the ` +
        "server's value (and API_PUBLIC_URL as on the server, if it is set " +
        'there) so that parley signs the webhook'
    }
    throw error
  }
}

// A random id makes every run a new message. With an idempotency key the id
// comes from the key, so that running the command again (with the same
// --timestamp) sends the same body and gets the first answer replayed
// instead of 422 idempotency_key_reused.
function testProviderId(options: ReceiveOptions): string {
  const key = options.idempotencyKey
  if (key === undefined) return `test-${randomUUID()}`

  const digest = createHash('sha256').update(key).digest('hex')
  return `test-${digest.slice(0, 32)}`
}

// The fields of a send plus the provider's id (DESIGN section 4).
function buildWebhook(
  kind: MessageKind,
  options: ReceiveOptions,
  providerId: string,
): WebhookRequest {
  const spec = specs[kind]
  const fields = {
    ...messageFields(kind, options),
    [spec.providerIdField]: providerId,
  }
  return {
    family: spec.family,
    path: spec.route,
    body: JSON.stringify(fields),
    headers: idempotencyHeaders(options),
  }
}

function formatReceived(
  kind: MessageKind,
  providerId: string,
  response: ApiResponse<WebhookAcceptedBody>,
): string {
  const notes = [`provider id ${providerId}`]
  if (response.body.duplicate === true) {
    notes.push('a duplicate of an earlier post, so nothing new was stored')
  }
  if (response.headers.get('idempotent-replayed') === 'true') {
    notes.push('replayed, it was posted before with this key')
  }
  const line = `accepted inbound ${kind} (${notes.join('; ')})`
  return toPrintable(line) + '\n'
}
