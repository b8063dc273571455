import type { ChannelFamily, MessageStatus } from './types.js'

/** The statuses a provider callback can move a message to. */
export type DeliveryStatus =
  'sent' | 'delivered' | 'undelivered' | 'bounced' | 'failed'

/** One delivery report from a provider, in Parley's terms. */
export interface DeliveryStatusUpdate {
  /** The family of the provider that sent the report. */
  readonly family: ChannelFamily
  /** The provider's id for the message, as returned when it was sent. */
  readonly providerMessageId: string
  /** The state the provider reports. */
  readonly status: DeliveryStatus
  /** The provider's error code or reason, if it gave one. */
  readonly error?: string | null
}

// Outbound statuses by how far along they are. Terminal states share the
// top rank: once a message is in one, no report moves it again.
const RANK: Readonly<Record<MessageStatus, number>> = {
  queued: 0,
  sending: 1,
  sent: 2,
  delivered: 3,
  undelivered: 3,
  bounced: 3,
  failed: 3,
  received: 3,
}

/**
 * The status a message moves to when `reported` arrives while it is in
 * `current`, or null when the report would move it backwards, sideways or
 * out of a terminal state.
 */
export function advanceStatus(
  current: MessageStatus,
  reported: DeliveryStatus,
): DeliveryStatus | null {
  return RANK[reported] > RANK[current] ? reported : null
}

/** Of several reports, the one that moves a message furthest. */
export function furthestStatus(
  statuses: readonly DeliveryStatus[],
): DeliveryStatus | undefined {
  return [...statuses].sort((a, b) => RANK[b] - RANK[a])[0]
}

// Twilio's MessageStatus values. Intermediate states before `sent` and
// `read` (which follows `delivered`) change nothing.
const TWILIO: Readonly<Record<string, DeliveryStatus | null>> = {
  accepted: null,
  scheduled: null,
  queued: null,
  sending: null,
  sent: 'sent',
  delivered: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
  canceled: 'failed',
  read: null,
  receiving: null,
  received: null,
}

/**
 * Maps a Twilio `MessageStatus` to a Parley status: null when it changes
 * nothing, undefined when the value is unknown.
 */
export function fromTwilioStatus(
  value: string,
): DeliveryStatus | null | undefined {
  return ownEntry(TWILIO, value.toLowerCase())
}

// SendGrid's event types. Delivery events move the state; engagement
// events (open, click, …) and `processed`/`deferred` change nothing.
const SENDGRID: Readonly<Record<string, DeliveryStatus | null>> = {
  processed: null,
  deferred: null,
  delivered: 'delivered',
  bounce: 'bounced',
  blocked: 'bounced',
  dropped: 'failed',
  open: null,
  click: null,
  spamreport: null,
  unsubscribe: null,
  group_unsubscribe: null,
  group_resubscribe: null,
}

/**
 * Maps a SendGrid event type to a Parley status: null when it changes
 * nothing, undefined when the event is unknown.
 */
export function fromSendGridEvent(
  event: string,
): DeliveryStatus | null | undefined {
  return ownEntry(SENDGRID, event.toLowerCase())
}

// The tables are object literals: a provider's `constructor` or
// `__proto__` must not find what they inherit from Object.prototype.
function ownEntry<T>(
  table: Readonly<Record<string, T>>,
  key: string,
): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined
}

/**
 * The provider message id a SendGrid event refers to: `sg_message_id`
 * starts with the `X-Message-Id` that the send returned, then a dot.
 */
export function sendGridMessageId(sgMessageId: string): string {
  return sgMessageId.split('.')[0] ?? sgMessageId
}
