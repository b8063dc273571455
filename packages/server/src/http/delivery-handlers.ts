import {
  type DeliveryStatusUpdate,
  fromSendGridEvent,
  fromTwilioStatus,
  isStorableText,
  type Parley,
  type QueueName,
  sendGridMessageId,
} from '@parley/core'
import type { HandlerInput, HandlerResult } from './handlers.js'
import { pageBody, pageRequest } from './paging.js'
import { HttpError } from './http-error.js'

/**
 * A Twilio-style status callback: `MessageSid` and `MessageStatus` (form
 * or JSON). Statuses that change nothing, and unknown ones, are answered
 * 200 and ignored, so that Twilio does not retry them.
 */
export async function smsStatus(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  if (!isRecord(input.body)) {
    throw new HttpError(
      'validation_failed',
      'the status callback must be an object of fields',
      {},
      [{ field: '(body)', message: 'must be a JSON object or a form' }],
    )
  }
  const fields = input.body
  const sid = fields.MessageSid
  const reported = fields.MessageStatus
  const problems = [
    ...fieldProblem('MessageSid', sid),
    ...fieldProblem('MessageStatus', reported),
  ]
  if (problems.length > 0 || !isText(sid) || !isText(reported)) {
    throw new HttpError(
      'validation_failed',
      'the status callback is incomplete',
      {},
      problems,
    )
  }
  const status = fromTwilioStatus(reported)
  if (!status) return statusResult({ ignored: 1 })
  const error = isText(fields.ErrorCode) ? fields.ErrorCode : null
  const [result] = await parley.reportDelivery(
    [{ family: 'sms', providerMessageId: sid, status, error }],
    { requestId: input.requestId },
  )
  return statusResult({ [result?.kind ?? 'ignored']: 1 })
}

// SendGrid batches events; a bound keeps one post's synchronous work (and
// its write transaction) short.
const MAX_EVENTS_PER_POST = 1000

/**
 * SendGrid-style event callbacks: a JSON array of events, matched to
 * messages by the `X-Message-Id` prefix of `sg_message_id`. Engagement
 * events, unknown events and events without an id are counted as ignored.
 */
export async function emailEvents(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  if (!Array.isArray(input.body)) {
    throw new HttpError(
      'validation_failed',
      'the body must be an array of events',
      {},
      [{ field: '(body)', message: 'must be a JSON array of events' }],
    )
  }
  if (input.body.length > MAX_EVENTS_PER_POST) {
    throw new HttpError(
      'payload_too_large',
      `at most ${MAX_EVENTS_PER_POST} events per post`,
    )
  }
  const updates: DeliveryStatusUpdate[] = []
  let ignored = 0
  for (const event of input.body as unknown[]) {
    const update = toEmailUpdate(event)
    if (update) updates.push(update)
    else ignored += 1
  }
  const results =
    updates.length > 0
      ? await parley.reportDelivery(updates, { requestId: input.requestId })
      : []
  const counts: Record<string, number> = { ignored }
  for (const result of results)
    counts[result.kind] = (counts[result.kind] ?? 0) + 1
  return statusResult(counts)
}

function toEmailUpdate(event: unknown): DeliveryStatusUpdate | undefined {
  const fields = asRecord(event)
  if (!isText(fields.sg_message_id) || !isText(fields.event)) return undefined
  const status = fromSendGridEvent(fields.event)
  if (!status) return undefined
  // The X-Message-Id part, before the first dot: without one ('.x') the
  // event matches no message and is ignored, not kept for later.
  const providerMessageId = sendGridMessageId(fields.sg_message_id)
  if (!isText(providerMessageId)) return undefined
  const reason = isText(fields.reason) ? fields.reason : null
  return { family: 'email', providerMessageId, status, error: reason }
}

function statusResult(counts: Record<string, number>): HandlerResult {
  return {
    status: 200,
    body: {
      status: 'ok',
      applied: counts.applied ?? 0,
      unchanged: counts.unchanged ?? 0,
      pending: counts.pending ?? 0,
      ignored: counts.ignored ?? 0,
    },
  }
}

/** `GET /api/dead-letters?queue=dispatch|inbound` */
export async function listDeadLetters(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const queue = readQueue(input.query.get('queue'))
  const page = await parley.deadLetters.list(queue, pageRequest(input.query))
  return {
    status: 200,
    body: pageBody(page, (letter) => ({
      queue: letter.queue,
      id: letter.id,
      message_id: letter.messageId,
      provider_message_id: letter.providerMessageId,
      attempts: letter.attempts,
      last_error: letter.lastError,
      failed_at: letter.failedAt,
    })),
  }
}

/** `POST /api/dead-letters/{queue}/{id}/retry` */
export async function retryDeadLetter(
  parley: Parley,
  input: HandlerInput,
): Promise<HandlerResult> {
  const queue = input.params.queue
  if (queue !== 'dispatch' && queue !== 'inbound') {
    throw new HttpError('not_found', `no queue named ${JSON.stringify(queue)}`)
  }
  const id = input.params.id ?? ''
  await parley.deadLetters.retry(queue, id, { requestId: input.requestId })
  return { status: 202, body: { status: 'accepted', queue, id } }
}

function readQueue(value: string | null): QueueName {
  if (value === 'dispatch' || value === 'inbound') return value
  throw new HttpError(
    'validation_failed',
    'queue must be dispatch or inbound',
    {},
    [{ field: 'queue', message: 'must be "dispatch" or "inbound"' }],
  )
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function asRecord(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {}
}

// A provider id or status: non-empty, at most 255 characters, and storable
// on every backend (no NUL, which Postgres refuses; no lone surrogate).
const MAX_FIELD_LENGTH = 255

function isText(value: unknown): value is string {
  return textProblem(value) === undefined
}

// What is wrong with a required text field of a callback, if anything.
function textProblem(value: unknown): string | undefined {
  if (value === undefined || value === null) return 'is required'
  if (typeof value !== 'string') return 'must be a string'
  if (value.trim() === '') return 'is required'
  if (value.length > MAX_FIELD_LENGTH) {
    return `must be at most ${MAX_FIELD_LENGTH} characters`
  }
  if (!isStorableText(value)) {
    return 'must not contain NUL or unpaired surrogate characters'
  }
  return undefined
}

function fieldProblem(
  field: string,
  value: unknown,
): { field: string; message: string }[] {
  const message = textProblem(value)
  return message === undefined ? [] : [{ field, message }]
}
