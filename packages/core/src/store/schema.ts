import type { ColumnType, Generated, Kysely } from 'kysely'

/**
 * A timestamp column: written as a UTC ISO-8601 string with milliseconds;
 * read back as that string on SQLite (fixed width, so it sorts) or as a
 * `Date` on Postgres (`timestamptz`).
 */
export type TimestampColumn = ColumnType<string | Date, string, string>

/** A nullable timestamp column. */
export type NullableTimestampColumn = ColumnType<
  string | Date | null,
  string | null | undefined,
  string | null
>

/**
 * An id column. SQLite returns numbers, Postgres returns `bigint` columns
 * as strings; either way the API shows decimal strings.
 */
export type IdColumn = ColumnType<number | string, never, never>

/** A reference to another row's id. */
export type RefColumn = ColumnType<number | string, number, number>

/** The state of a row in one of the durable queues. */
export type QueueState = 'pending' | 'running' | 'done' | 'dead'

/** Columns every durable queue table has. */
export interface QueueColumns {
  /** The row id. */
  id: IdColumn
  /**
   * Where the row is: waiting, claimed by a worker, finished, or dead-lettered.
   */
  state: QueueState
  /** Tries so far. */
  attempts: number
  /** When the row is due (retries are scheduled by moving it). */
  run_at: TimestampColumn
  /** When the current claim's lease ends; null when unclaimed. */
  locked_until: NullableTimestampColumn
  /** The token of the worker holding the claim; null when unclaimed. */
  claim_token: string | null
  /** Why the last try failed; null when none did. */
  last_error: string | null
  /** When the row last changed. */
  updated_at: TimestampColumn
}

/** `conversations`: one row per pair of participants on one family. */
export interface ConversationsTable {
  /** The conversation id. */
  id: Generated<number | string>
  /** `<family>:<a><-><b>`, the participants sorted: unique. */
  key: string
  /** The channel family (`sms` or `email`). */
  channel: string
  /** The first participant, normalized (E.164 or lowercase email). */
  participant_a: string
  /** The second participant, normalized. */
  participant_b: string
  /** Messages threaded into it. */
  message_count: number
  /** The latest timestamp of its messages. */
  last_activity_at: TimestampColumn
  /** When its first message was stored. */
  created_at: TimestampColumn
}

/** `messages`: every message, outbound and inbound. */
export interface MessagesTable {
  /** The message id. */
  id: Generated<number | string>
  /** The conversation it is threaded into. */
  conversation_id: RefColumn
  /** `outbound` or `inbound`. */
  direction: string
  /** `sms`, `mms` or `email`. */
  channel: string
  /** The sender as given (an email may keep its display name). */
  from_address: string
  /** The recipient as given. */
  to_address: string
  /** The sender, normalized as in the conversation key. */
  from_participant: string
  /** The recipient, normalized. */
  to_participant: string
  /** The email subject; null for SMS and MMS, or an email without one. */
  subject: string | null
  /** The text (or HTML) of the message. */
  body: string
  /** The start of the body as plain text, for lists. */
  snippet: string
  /** JSON array of URLs. */
  attachments: string
  /** When the message was sent or received, as its sender said. */
  timestamp: TimestampColumn
  /** A `MessageStatus`. */
  status: string
  /**
   * The provider that sent it; null until one did, and for inbound messages.
   */
  provider: string | null
  /**
   * The provider's id for it; null until sent, or the webhook's id for inbound.
   */
  provider_message_id: string | null
  /** When it was stored. */
  created_at: TimestampColumn
  /** When its row last changed. */
  updated_at: TimestampColumn
}

/** `dispatch_jobs`: one outbound delivery per message. */
export interface DispatchJobsTable extends Omit<
  QueueColumns,
  'id' | 'attempts' | 'claim_token' | 'last_error'
> {
  /** The job id. */
  id: Generated<number | string>
  /** The outbound message it delivers. */
  message_id: RefColumn
  /** The channel family whose providers it goes to. */
  family: string
  /** Provider calls made so far. */
  attempts: Generated<number>
  /** The token of the worker holding the claim; null when unclaimed. */
  claim_token: string | null
  /** Why the last call failed; null when none did. */
  last_error: string | null
  /** When it was queued. */
  created_at: TimestampColumn
}

/** `inbound_events`: webhook payloads waiting to be threaded. */
export interface InboundEventsTable extends Omit<
  QueueColumns,
  'id' | 'attempts' | 'claim_token' | 'last_error'
> {
  /** The event id. */
  id: Generated<number | string>
  /** The channel family of its webhook. */
  family: string
  /**
   * The provider's id of the message: unique per family, so a redelivered
   * webhook is stored once.
   */
  provider_message_id: string
  /** JSON of the normalized message. */
  payload: string
  /** The message it was threaded into; null until then. */
  message_id: ColumnType<number | string | null, never, number | null>
  /** Tries to thread it so far. */
  attempts: Generated<number>
  /** The token of the worker holding the claim; null when unclaimed. */
  claim_token: string | null
  /** Why the last try failed; null when none did. */
  last_error: string | null
  /** When its webhook was accepted. */
  received_at: TimestampColumn
  /** When it was threaded; null until then. */
  processed_at: NullableTimestampColumn
}

/** `idempotency_keys`: responses kept for replay. */
export interface IdempotencyKeysTable {
  /** What the key is scoped to (the server uses the route and API key). */
  scope: string
  /** The `Idempotency-Key` as the client sent it: unique within its scope. */
  key: string
  /** A hash of the request, so that a reuse with another body is told apart. */
  fingerprint: string
  /** `in_flight` while the first request runs, then `done`. */
  state: string
  /** Unused: always null (the replayed result is in `response_body`). */
  status_code: number | null
  /**
   * The first request's result, as JSON, replayed to repeats; null while in
   * flight.
   */
  response_body: string | null
  /** When the key was first used. */
  created_at: TimestampColumn
  /** When the key may be used again for something else. */
  expires_at: TimestampColumn
}

/**
 * `pending_status_updates`: reports that arrived before their message's
 * provider id was stored.
 */
export interface PendingStatusUpdatesTable {
  /** The row id. */
  id: Generated<number | string>
  /** The channel family of the report. */
  family: string
  /** The provider's id the report is about. */
  provider_message_id: string
  /** The `MessageStatus` it reports. */
  status: string
  /** The provider's reason, for a failure; null otherwise. */
  error: string | null
  /** When the report arrived. */
  received_at: TimestampColumn
}

/**
 * `rate_limit_buckets`: token buckets of the database rate-limit store,
 * in whole units (see `RateLimitStore`). Postgres returns `bigint` columns
 * as strings.
 */
export interface RateLimitBucketsTable {
  /** Whose bucket it is, such as `ip:203.0.113.7` or `sender:+18045551234`. */
  key: string
  /** The tokens left, in whole units. */
  level: ColumnType<number | string, number, number>
  /** When the level was last computed, in ms since the Unix epoch. */
  updated_at_ms: ColumnType<number | string, number, number>
}

/** Parley's tables, as Kysely sees them. */
export interface ParleySchema {
  /** Token buckets of the database rate-limit store. */
  rate_limit_buckets: RateLimitBucketsTable
  /** Delivery reports waiting for their message's provider id. */
  pending_status_updates: PendingStatusUpdatesTable
  /** One row per pair of participants on one family. */
  conversations: ConversationsTable
  /** Every message, outbound and inbound. */
  messages: MessagesTable
  /** The durable queue of outbound deliveries. */
  dispatch_jobs: DispatchJobsTable
  /** The durable queue of accepted webhooks. */
  inbound_events: InboundEventsTable
  /** Results kept for replay under an `Idempotency-Key`. */
  idempotency_keys: IdempotencyKeysTable
}

/** The SQL dialects Parley runs on. */
export type DialectName = 'sqlite' | 'postgres'

/**
 * Called for each notification on a subscribed channel with its payload
 * (`''` when it has none), and with `undefined` after the listening
 * session reconnected: notifications sent while it was away are lost, so
 * the subscriber should look for whatever they announced.
 */
export type NotificationHandler = (payload: string | undefined) => void

/**
 * A database Parley can use: a Kysely instance plus the few things that
 * differ between dialects. Create one with `openSqlite` from
 * `@parley/core/sqlite` or `openPostgres` from `@parley/core/postgres`.
 */
export interface ParleyDatabase {
  /** Which SQL dialect this is. */
  readonly dialect: DialectName
  /**
   * The Postgres schema Parley's tables live in, when not the default
   * (`public`). Unused on SQLite.
   */
  readonly schema?: string
  /** The Kysely instance over Parley's schema. */
  readonly kysely: Kysely<ParleySchema>
  /**
   * Runs `work` in one write transaction and commits it, or rolls it back
   * when `work` throws. On SQLite the write lock is taken up front.
   */
  writeTransaction<T>(
    work: (trx: Kysely<ParleySchema>) => Promise<T>,
  ): Promise<T>
  /**
   * Sends a notification on `channel` to every session of this database
   * that listens on it (Postgres `NOTIFY`). Only databases that several
   * processes share have it; without it, workers of other processes find
   * new work at their next poll.
   */
  notify?(channel: string, payload: string): Promise<void>
  /**
   * Calls `onNotify` for every notification on `channel` until the
   * returned function is called (Postgres `LISTEN`, over one dedicated
   * session that reconnects with backoff when it drops). Resolves once the
   * first attempt to listen has been made, whether it succeeded or not:
   * polling covers the time without a session.
   */
  subscribe?(
    channel: string,
    onNotify: NotificationHandler,
  ): Promise<() => Promise<void>>
  /**
   * Throws when the storage the connection opened is no longer the one at
   * its path, or is damaged (SQLite: the file was removed, replaced, or
   * lost its header), with the reason. Readiness calls it; databases
   * without a file of their own do not have it.
   */
  checkFile?(): void
  /** Closes the connection (or pool), and the listening session if any. */
  close(): Promise<void>
}

/** Reads a timestamp column as UTC ISO-8601 with milliseconds. */
export function readTimestamp(value: string | Date): string {
  return typeof value === 'string' ? value : value.toISOString()
}

/** Reads a nullable timestamp column. */
export function readNullableTimestamp(
  value: string | Date | null,
): string | null {
  return value === null ? null : readTimestamp(value)
}

/** Reads an id column as the decimal string the API shows. */
export function readId(value: number | string): string {
  return String(value)
}
