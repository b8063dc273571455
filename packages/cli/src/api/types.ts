// The response bodies of Parley's HTTP API (DESIGN section 4), as the CLI
// reads them. Field names are the wire names.

/** The 202 answer to a send. */
export interface AcceptedBody {
  status: 'accepted'
  /** The new message's id. */
  id: string
  /** The id of the conversation the message belongs to. */
  conversation_id: string
}

/** Where a listed page sits in the whole list. */
export interface ListMeta {
  /** The page number, from 1. */
  page: number
  /** The number of items per page. */
  page_size: number
  /** The number of items in the whole list. */
  total: number
}

/** One page of a list. */
export interface ListBody<Item> {
  items: Item[]
  meta: ListMeta
}

/** An item of `GET /api/conversations`. */
export interface ConversationItem {
  id: string
  key: string
  channel: string
  participant_a: string
  participant_b: string
  message_count: number
  last_activity_at: string
}

/** An item of `GET /api/conversations/{id}/messages`. */
export interface MessageItem {
  id: string
  conversation_id: string
  direction: string
  channel: string
  from: string
  to: string
  /** An email's subject; `null` or absent for SMS and MMS. */
  subject?: string | null
  body: string
  snippet: string
  attachments: string[] | null
  timestamp: string
  status: string
}

/** The answer to `GET /api/messages/{id}`: a message and its delivery. */
export interface MessageDetail extends MessageItem {
  /** Provider calls made so far (0 for inbound messages). */
  attempts: number
  /** Why the last provider call failed, if one did. */
  last_error: string | null
  /** When the next provider call is due, if one is pending. */
  next_attempt_at: string | null
  /** The provider that sent it, once sent. */
  provider: string | null
  /** The provider's id for it, once sent (or received). */
  provider_message_id: string | null
}

/**
 * The answer to `GET /metrics`: counters and gauges as non-negative
 * integers, by field name (`docs/metrics.md`).
 */
export type MetricsBody = Record<string, number>

/** The two queues that keep dead letters. */
export type QueueName = 'dispatch' | 'inbound'

/** An item of `GET /api/dead-letters?queue=`. */
export interface DeadLetterItem {
  queue: QueueName
  /** The dispatch job's or inbound event's id; the replay takes it. */
  id: string
  /** The outbound message (dispatch), or the threaded one if any (inbound). */
  message_id: string | null
  /** The webhook's provider id (inbound); `null` for dispatch. */
  provider_message_id: string | null
  attempts: number
  /** Why the last attempt failed. */
  last_error: string | null
  /** When it was dead-lettered. */
  failed_at: string
}

/** The 202 answer to `POST /api/dead-letters/{queue}/{id}/retry`. */
export interface RetryAcceptedBody {
  status: 'accepted'
  queue: QueueName
  id: string
}

/** The 202 answer to an inbound webhook. */
export interface WebhookAcceptedBody {
  status: 'accepted'
  /** Present when the provider's id was seen before: nothing was stored. */
  duplicate?: boolean
}
