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
  id: IdColumn
  state: QueueState
  attempts: number
  run_at: TimestampColumn
  locked_until: NullableTimestampColumn
  claim_token: string | null
  last_error: string | null
  updated_at: TimestampColumn
}

/** `conversations`: one row per pair of participants on one family. */
export interface ConversationsTable {
  id: Generated<number | string>
  key: string
  channel: string
  participant_a: string
  participant_b: string
  message_count: number
  last_activity_at: TimestampColumn
  created_at: TimestampColumn
}

/** `messages`: every message, outbound and inbound. */
export interface MessagesTable {
  id: Generated<number | string>
  conversation_id: RefColumn
  direction: string
  channel: string
  from_address: string
  to_address: string
  from_participant: string
  to_participant: string
  subject: string | null
  body: string
  snippet: string
  /** JSON array of URLs. */
  attachments: string
  timestamp: TimestampColumn
  status: string
  provider: string | null
  provider_message_id: string | null
  created_at: TimestampColumn
  updated_at: TimestampColumn
}

/** `dispatch_jobs`: one outbound delivery per message. */
export interface DispatchJobsTable extends Omit<
  QueueColumns,
  'id' | 'attempts' | 'claim_token' | 'last_error'
> {
  id: Generated<number | string>
  message_id: RefColumn
  family: string
  attempts: Generated<number>
  claim_token: string | null
  last_error: string | null
  created_at: TimestampColumn
}

/** `inbound_events`: webhook payloads waiting to be threaded. */
export interface InboundEventsTable extends Omit<
  QueueColumns,
  'id' | 'attempts' | 'claim_token' | 'last_error'
> {
  id: Generated<number | string>
  family: string
  provider_message_id: string
  /** JSON of the normalized message. */
  payload: string
  message_id: ColumnType<number | string | null, never, number | null>
  attempts: Generated<number>
  claim_token: string | null
  last_error: string | null
  received_at: TimestampColumn
  processed_at: NullableTimestampColumn
}

/** `idempotency_keys`: responses kept for replay. */
export interface IdempotencyKeysTable {
  scope: string
  key: string
  fingerprint: string
  state: string
  status_code: number | null
  response_body: string | null
  created_at: TimestampColumn
  expires_at: TimestampColumn
}

/** `pending_status_updates`: reports that arrived before their message's provider id was stored. */
export interface PendingStatusUpdatesTable {
  id: Generated<number | string>
  family: string
  provider_message_id: string
  status: string
  error: string | null
  received_at: TimestampColumn
}

/**
 * `rate_limit_buckets`: token buckets of the database rate-limit store,
 * in whole units (see `RateLimitStore`). Postgres returns `bigint` columns
 * as strings.
 */
export interface RateLimitBucketsTable {
  key: string
  level: ColumnType<number | string, number, number>
  updated_at_ms: ColumnType<number | string, number, number>
}

/** Parley's tables, as Kysely sees them. */
export interface ParleySchema {
  rate_limit_buckets: RateLimitBucketsTable
  pending_status_updates: PendingStatusUpdatesTable
  conversations: ConversationsTable
  messages: MessagesTable
  dispatch_jobs: DispatchJobsTable
  inbound_events: InboundEventsTable
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
