/** The three kinds of message Parley carries. */
export type Channel = 'sms' | 'mms' | 'email'

/**
 * A channel family groups the channels that share addresses and providers:
 * SMS and MMS are one family, email the other.
 */
export type ChannelFamily = 'sms' | 'email'

/** Which way a message travelled. */
export type Direction = 'outbound' | 'inbound'

/**
 * Where a message is in its life. Outbound: `queued` -> `sending` -> `sent`,
 * then one terminal state. Inbound messages are `received`.
 */
export type MessageStatus =
  | 'queued'
  | 'sending'
  | 'sent'
  | 'delivered'
  | 'undelivered'
  | 'bounced'
  | 'failed'
  | 'received'

/** An outbound SMS or MMS, as a client submits it. */
export interface SmsSendRequest {
  /** Sender phone number or short code. */
  from: string
  /** Recipient phone number or short code. */
  to: string
  /** `mms` requires at least one attachment. */
  type: 'sms' | 'mms'
  /** Message text; required (non-empty) for `sms`. */
  body: string
  /** http(s) URLs of media; `null` is read as none. */
  attachments: readonly string[] | null
  /** ISO-8601 instant with `Z` or an offset. */
  timestamp: string
}

/** An outbound email, as a client submits it. */
export interface EmailSendRequest {
  /** Sender address, optionally with a display name. */
  from: string
  /** Recipient address, optionally with a display name. */
  to: string
  /** Optional subject line. */
  subject?: string | null
  /** Body; HTML allowed and kept byte for byte. Must not be empty. */
  body: string
  /** http(s) URLs of attachments; `null` is read as none. */
  attachments: readonly string[] | null
  /** ISO-8601 instant with `Z` or an offset. */
  timestamp: string
}

/** An inbound SMS or MMS webhook: the send shape plus the provider's id. */
export interface SmsWebhookPayload extends SmsSendRequest {
  /** The provider's own id for the message; dedupes redeliveries. */
  messaging_provider_id: string
}

/** An inbound email webhook: the send shape plus the provider's id. */
export interface EmailWebhookPayload extends EmailSendRequest {
  /** The provider's own id for the message; dedupes redeliveries. */
  xillio_id: string
}

/**
 * A message after validation and normalization: what the store writes and
 * what providers receive.
 */
export interface NormalizedMessage {
  readonly channel: Channel
  readonly family: ChannelFamily
  /** The sender as the client wrote it. */
  readonly from: string
  /** The recipient as the client wrote it. */
  readonly to: string
  /** Normalized sender (E.164, short code, sender id or bare address). */
  readonly fromParticipant: string
  /** Normalized recipient. */
  readonly toParticipant: string
  readonly subject: string | null
  readonly body: string
  readonly attachments: readonly string[]
  /** UTC instant, ISO-8601 with milliseconds. */
  readonly timestamp: string
}

/** A stored message as the API returns it. */
export interface Message {
  /** Parley's id: decimal digits, assigned in order. */
  readonly id: string
  /** The id of the conversation it belongs to. */
  readonly conversationId: string
  /** Whether Parley sent it or received it. */
  readonly direction: Direction
  /** `sms`, `mms` or `email`. */
  readonly channel: Channel
  /** The sender, as the client or provider gave it. */
  readonly from: string
  /** The recipient, as the client or provider gave it. */
  readonly to: string
  /** The email subject; `null` for SMS and MMS or when none was given. */
  readonly subject: string | null
  /** The body, byte for byte. */
  readonly body: string
  /** The body's start, cut on a grapheme boundary, HTML stripped. */
  readonly snippet: string
  /** http(s) URLs of its media or attachments. */
  readonly attachments: readonly string[]
  /** UTC, ISO-8601 with milliseconds. */
  readonly timestamp: string
  /** Where it is in its life. */
  readonly status: MessageStatus
}

/** A stored message with its delivery details. */
export interface MessageDetail extends Message {
  /** Provider calls made so far (0 for inbound messages). */
  readonly attempts: number
  /** The last provider error, if any. */
  readonly lastError: string | null
  /** When the next provider call is due, if one is pending. */
  readonly nextAttemptAt: string | null
  /** The provider that sent it, once sent. */
  readonly provider: string | null
  /** The provider's id for it, once sent (or received). */
  readonly providerMessageId: string | null
}

/** A conversation: two participants on one channel family. */
export interface Conversation {
  /** Parley's id: decimal digits, assigned in order. */
  readonly id: string
  /** `<family>:<a><-><b>`, participants sorted. */
  readonly key: string
  /** The family its messages travel on. */
  readonly channel: ChannelFamily
  /** The participant that sorts first, normalized (E.164, lower case). */
  readonly participantA: string
  /** The participant that sorts second, normalized. */
  readonly participantB: string
  /** How many messages it holds. */
  readonly messageCount: number
  /** The latest `timestamp` among its messages (UTC, milliseconds). */
  readonly lastActivityAt: string
}

/** One page of a list. */
export interface Page<T> {
  /** This page's items, in the list's order. */
  readonly items: readonly T[]
  /** This page's number, from 1. */
  readonly page: number
  /** The page size used (after defaults and clamping). */
  readonly pageSize: number
  /** How many items the whole list holds. */
  readonly total: number
}

/** Which page of a list to read. */
export interface PageRequest {
  /** 1-based page number. @default 1 */
  page?: number
  /** Items per page, 1 to 200 (0 means the default). @default 50 */
  pageSize?: number
}

/** The family a channel belongs to. */
export function familyOf(channel: Channel): ChannelFamily {
  switch (channel) {
    case 'sms':
    case 'mms':
      return 'sms'
    case 'email':
      return 'email'
  }
}
