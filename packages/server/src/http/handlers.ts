import type {
  Conversation,
  Message,
  MessageDetail,
  Page,
  Parley,
} from '@parley/core'
import { HttpError } from './http-error.js'
import type { RouteName } from './routes.js'

/** What a handler gets: the parsed request. */
export interface HandlerInput {
  readonly params: Readonly<Record<string, string>>
  readonly query: URLSearchParams
  /** The parsed body (POST routes). */
  readonly body: unknown
  /** The body's media type (POST routes). */
  readonly bodyType?: 'json' | 'form'
  /** When the request arrived, ms since the epoch. */
  readonly receivedAt: number
}

/** A handler's answer: status and JSON body. */
export interface HandlerResult {
  readonly status: number
  readonly body: unknown
}

type Handler = (parley: Parley, input: HandlerInput) => Promise<HandlerResult>

/** The handler of every route; the table is exhaustive by type. */
export const HANDLERS: Readonly<Record<RouteName, Handler>> = {
  send_sms: (parley, input) => send(parley, input, 'sms'),
  send_email: (parley, input) => send(parley, input, 'email'),
  webhook_sms: (parley, input) => receiveSms(parley, input),
  webhook_email: (parley, input) => receive(parley, input.body, 'email'),
  list_conversations: listConversations,
  list_messages: listMessages,
  get_message: getMessage,
  metrics: async (parley) => ({ status: 200, body: parley.metrics.snapshot() }),
  healthz: async () => ({ status: 200, body: { status: 'ok' } }),
  readyz: readyz,
}

async function send(
  parley: Parley,
  input: HandlerInput,
  channel: 'sms' | 'email',
): Promise<HandlerResult> {
  const result = await parley.send(input.body, { channel })
  return {
    status: 202,
    body: {
      status: 'accepted',
      id: result.id,
      conversation_id: result.conversationId,
    },
  }
}

async function receive(
  parley: Parley,
  payload: unknown,
  channel: 'sms' | 'email',
): Promise<HandlerResult> {
  const result = await parley.receive(payload, { channel })
  const body = result.duplicate
    ? { status: 'accepted', duplicate: true }
    : { status: 'accepted' }
  return { status: 202, body }
}

function receiveSms(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const payload =
    input.bodyType === 'form'
      ? fromTwilioForm(input.body as Record<string, string>, input.receivedAt)
      : input.body
  return receive(parley, payload, 'sms')
}

// Twilio posts inbound messages as a form with its own field names.
function fromTwilioForm(
  form: Record<string, string>,
  receivedAt: number,
): Record<string, unknown> {
  const count = Number.parseInt(form.NumMedia ?? '0', 10)
  const media = Number.isInteger(count) && count > 0 ? count : 0
  const attachments: string[] = []
  for (let index = 0; index < Math.min(media, 100); index += 1) {
    const url = form[`MediaUrl${index}`]
    if (url !== undefined) attachments.push(url)
  }
  return {
    from: form.From,
    to: form.To,
    type: media > 0 ? 'mms' : 'sms',
    body: form.Body ?? '',
    attachments,
    timestamp: new Date(receivedAt).toISOString(),
    messaging_provider_id: form.MessageSid,
  }
}

async function listConversations(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const page = await parley.conversations.list(pageRequest(input.query))
  return { status: 200, body: pageBody(page, conversationJson) }
}

async function listMessages(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const id = input.params.id ?? ''
  const page = await parley.conversations.messages(id, pageRequest(input.query))
  return { status: 200, body: pageBody(page, messageJson) }
}

async function getMessage(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const message = await parley.messages.get(input.params.id ?? '')
  return { status: 200, body: messageDetailJson(message) }
}

async function readyz(parley: Parley): Promise<HandlerResult> {
  const report = await parley.readiness()
  if (report.ready) return { status: 200, body: { status: 'ready' } }
  throw new HttpError('unavailable', `not ready: ${report.reason}`, {
    'Retry-After': '5',
  })
}

// Query values must be decimal integers; core checks their range.
function pageRequest(query: URLSearchParams): {
  page?: number
  pageSize?: number
} {
  return {
    page: readInteger(query, 'page'),
    pageSize: readInteger(query, 'pageSize'),
  }
}

function readInteger(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name)
  if (raw === null || raw === '') return undefined
  if (!/^[0-9]{1,15}$/.test(raw)) {
    throw new HttpError(
      'validation_failed',
      `${name} must be a positive integer`,
      {},
      [{ field: name, message: 'must be a positive integer' }],
    )
  }
  return Number(raw)
}

function pageBody<T>(page: Page<T>, toJson: (item: T) => unknown): unknown {
  return {
    items: page.items.map(toJson),
    meta: { page: page.page, page_size: page.pageSize, total: page.total },
  }
}

function conversationJson(conversation: Conversation): unknown {
  return {
    id: conversation.id,
    key: conversation.key,
    channel: conversation.channel,
    participant_a: conversation.participantA,
    participant_b: conversation.participantB,
    message_count: conversation.messageCount,
    last_activity_at: conversation.lastActivityAt,
  }
}

function messageJson(message: Message): Record<string, unknown> {
  return {
    id: message.id,
    conversation_id: message.conversationId,
    direction: message.direction,
    channel: message.channel,
    from: message.from,
    to: message.to,
    subject: message.subject,
    body: message.body,
    snippet: message.snippet,
    attachments: message.attachments,
    timestamp: message.timestamp,
    status: message.status,
  }
}

function messageDetailJson(message: MessageDetail): unknown {
  return {
    ...messageJson(message),
    attempts: message.attempts,
    last_error: message.lastError,
    next_attempt_at: message.nextAttemptAt,
    provider: message.provider,
    provider_message_id: message.providerMessageId,
  }
}
