import type { IncomingHttpHeaders } from 'node:http'
import type {
  Conversation,
  Message,
  MessageDetail,
  MockProvider,
  Parley,
  RateLimitDecision,
} from '@parley/core'
import {
  emailEvents,
  listDeadLetters,
  retryDeadLetter,
  smsStatus,
} from './delivery-handlers.js'
import { HttpError } from './http-error.js'
import { metricsResponse } from './metrics.js'
import { getMockConfig, putMockConfig } from './mock-config.js'
import { OPENAPI_JSON } from './openapi-document.js'
import { pageBody, pageRequest } from './paging.js'
import type { RouteName } from './routes.js'

/** What a handler gets: the parsed request. */
export interface HandlerInput {
  readonly params: Readonly<Record<string, string>>
  readonly query: URLSearchParams
  /** The request's headers, for routes that negotiate their answer. */
  readonly headers: IncomingHttpHeaders
  /** The parsed body (POST routes). */
  readonly body: unknown
  /** The body's media type (POST routes). */
  readonly bodyType?: 'json' | 'form'
  /** When the request arrived, ms since the epoch. */
  readonly receivedAt: number
  /** The `Idempotency-Key` header, when sent. */
  readonly idempotencyKey?: string
  /** What idempotency keys are scoped to: the route and the API key. */
  readonly idempotencyScope: string
  /** The request's id, for the log lines of what it does. */
  readonly requestId?: string
}

/** A handler's answer: status and JSON body. */
export interface HandlerResult {
  readonly status: number
  readonly body: unknown
  /** A body that is not JSON (or JSON already written), sent as is. */
  readonly text?: { readonly contentType: string; readonly body: string }
  /** Extra response headers. */
  readonly headers?: Readonly<Record<string, string>>
  /** The per-sender limit's state, when one applied. */
  readonly rateLimit?: RateLimitDecision
}

const REPLAYED = { 'Idempotent-Replayed': 'true' } as const
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

function idempotency(input: HandlerInput) {
  return {
    idempotencyKey: input.idempotencyKey,
    idempotencyScope: input.idempotencyScope,
    idempotencyBody: input.body,
    requestId: input.requestId,
  }
}

/** What every handler can reach. */
export interface HandlerContext {
  readonly parley: Parley
  /** The mock providers the server runs, for their live settings. */
  readonly mocks: readonly MockProvider[]
}

/** A route's handler. */
export type Handler = (
  context: HandlerContext,
  input: HandlerInput,
) => Promise<HandlerResult>

/** The handler of every route; the table is exhaustive by type. */
export const HANDLERS: Readonly<Record<RouteName, Handler>> = {
  send_sms: ({ parley }, input) => send(parley, input, 'sms'),
  send_email: ({ parley }, input) => send(parley, input, 'email'),
  webhook_sms: ({ parley }, input) => receiveSms(parley, input),
  webhook_email: ({ parley }, input) =>
    receive(parley, input, input.body, 'email'),
  list_conversations: ({ parley }, input) => listConversations(parley, input),
  list_messages: ({ parley }, input) => listMessages(parley, input),
  get_message: ({ parley }, input) => getMessage(parley, input),
  metrics: ({ parley }, input) => metricsResponse(parley, input),
  openapi: async () => ({
    status: 200,
    body: undefined,
    text: { contentType: JSON_CONTENT_TYPE, body: OPENAPI_JSON },
  }),
  healthz: async () => ({ status: 200, body: { status: 'ok' } }),
  readyz: ({ parley }) => readyz(parley),
  sms_status: ({ parley }, input) => smsStatus(parley, input),
  email_events: ({ parley }, input) => emailEvents(parley, input),
  get_mock_config: async ({ mocks }) => getMockConfig(mocks),
  put_mock_config: async ({ mocks }, input) => putMockConfig(mocks, input),
  list_dead_letters: ({ parley }, input) => listDeadLetters(parley, input),
  retry_dead_letter: ({ parley }, input) => retryDeadLetter(parley, input),
}

async function send(
  parley: Parley,
  input: HandlerInput,
  channel: 'sms' | 'email',
): Promise<HandlerResult> {
  const result = await parley.send(input.body, {
    channel,
    ...idempotency(input),
  })
  return {
    status: 202,
    body: {
      status: 'accepted',
      id: result.id,
      conversation_id: result.conversationId,
    },
    headers: result.replayed ? REPLAYED : undefined,
    rateLimit: result.rateLimit,
  }
}

async function receive(
  parley: Parley,
  input: HandlerInput,
  payload: unknown,
  channel: 'sms' | 'email',
): Promise<HandlerResult> {
  const result = await parley.receive(payload, {
    channel,
    ...idempotency(input),
  })
  const body = result.duplicate
    ? { status: 'accepted', duplicate: true }
    : { status: 'accepted' }
  return {
    status: 202,
    body,
    headers: result.replayed ? REPLAYED : undefined,
  }
}

function receiveSms(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const payload =
    input.bodyType === 'form'
      ? fromTwilioForm(input.body as Record<string, string>, input.receivedAt)
      : input.body
  return receive(parley, input, payload, 'sms')
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
