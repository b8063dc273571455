import { type Kysely, sql } from 'kysely'
import {
  advanceStatus,
  type DeliveryStatus,
  type DeliveryStatusUpdate,
  furthestStatus,
} from '../messages/delivery-status.js'
import type { ChannelFamily, MessageStatus } from '../messages/types.js'
import { providerLockKey } from './lock-keys.js'
import { PreparedStatement } from './prepared.js'
import { type DialectName, type ParleySchema, readId } from './schema.js'

/** What became of one delivery report. */
export type DeliveryReportResult =
  | {
      readonly kind: 'applied'
      readonly messageId: string
      readonly status: DeliveryStatus
    }
  /** The message is already as far along (or terminal): nothing moved. */
  | { readonly kind: 'unchanged'; readonly messageId: string }
  /** No message has that provider id yet: kept until one does. */
  | { readonly kind: 'pending' }

const CHANNELS: Readonly<Record<ChannelFamily, readonly string[]>> = {
  sms: ['sms', 'mms'],
  email: ['email'],
}

/**
 * Applies a provider's delivery report inside the caller's transaction.
 * A report never moves a message backwards or out of a terminal state; a
 * report for a provider id not stored yet is kept and applied when the id
 * is stored (see {@link applyPendingReports}).
 */
export async function applyDeliveryReport(
  trx: Kysely<ParleySchema>,
  dialect: DialectName,
  update: DeliveryStatusUpdate,
  now: string,
): Promise<DeliveryReportResult> {
  await lockProviderId(trx, dialect, update.family, update.providerMessageId)
  for (;;) {
    const message = await trx
      .selectFrom('messages')
      .select(['id', 'status'])
      .where('provider_message_id', '=', update.providerMessageId)
      .where('direction', '=', 'outbound')
      .where('channel', 'in', CHANNELS[update.family])
      .executeTakeFirst()
    if (!message) {
      await keepForLater(trx, update, now)
      return { kind: 'pending' }
    }
    const messageId = readId(message.id)
    const current = message.status as MessageStatus
    const next = advanceStatus(current, update.status)
    if (next === null) return { kind: 'unchanged', messageId }
    // Only from the status read: another instance (Postgres) may have
    // moved the message since, and its status then decides again.
    const moved = await trx
      .updateTable('messages')
      .set({ status: next, updated_at: now })
      .where('id', '=', Number(messageId))
      .where('status', '=', current)
      .executeTakeFirst()
    if (moved.numUpdatedRows > 0n) {
      return { kind: 'applied', messageId, status: next }
    }
  }
}

/**
 * Orders, on Postgres, the transactions that match a provider id with its
 * message: a report that finds no message keeps itself as pending, and the
 * dispatcher that stores the id takes the pending reports. Each sees the
 * other's rows only once committed, so without an order between them a
 * report kept while the id was being stored would never be taken. A
 * transaction-scoped advisory lock on the family and the id orders them;
 * take it before either reads (the dispatcher takes it in the statement
 * that stores the id). SQLite runs one transaction at a time.
 */
export async function lockProviderId(
  trx: Kysely<ParleySchema>,
  dialect: DialectName,
  family: ChannelFamily,
  providerMessageId: string,
): Promise<void> {
  if (dialect !== 'postgres') return
  const key = providerLockKey(family, providerMessageId)
  await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(
    trx,
  )
}

/**
 * The order in which to apply a batch of reports: by family, then provider
 * id. Two transactions (of two instances on one Postgres) that apply
 * reports on the same messages then lock their rows in the same order and
 * cannot deadlock.
 */
export function reportOrder(
  updates: readonly DeliveryStatusUpdate[],
): number[] {
  const key = (update: DeliveryStatusUpdate) =>
    providerLockKey(update.family, update.providerMessageId)
  return updates
    .map((_, index) => index)
    .sort((a, b) => {
      const x = key(updates[a]!)
      const y = key(updates[b]!)
      return x < y ? -1 : x > y ? 1 : a - b
    })
}

/**
 * Applies the reports that arrived before `providerMessageId` was stored,
 * once it is; the caller has just set the message to `sent`.
 */
export async function applyPendingReports(
  trx: Kysely<ParleySchema>,
  family: ChannelFamily,
  providerMessageId: string,
  messageId: string,
  now: string,
): Promise<DeliveryStatus | null> {
  const { rows } = await takePendingReports.execute(trx, {
    providerMessageId,
    family,
  })
  // Almost always none: the report came after the provider's answer.
  if (rows.length === 0) return null
  const furthest = furthestStatus(
    rows.map((row) => row.status as DeliveryStatus),
  )
  const next = furthest ? advanceStatus('sent', furthest) : null
  if (next !== null) await setStatus(trx, messageId, next, now)
  return next
}

async function keepForLater(
  trx: Kysely<ParleySchema>,
  update: DeliveryStatusUpdate,
  now: string,
): Promise<void> {
  // A redelivered report adds nothing: keep one row per id and status.
  const known = await trx
    .selectFrom('pending_status_updates')
    .select('id')
    .where('provider_message_id', '=', update.providerMessageId)
    .where('family', '=', update.family)
    .where('status', '=', update.status)
    .executeTakeFirst()
  if (known) return
  await trx
    .insertInto('pending_status_updates')
    .values({
      family: update.family,
      provider_message_id: update.providerMessageId,
      status: update.status,
      error: update.error ?? null,
      received_at: now,
    })
    .execute()
}

async function setStatus(
  trx: Kysely<ParleySchema>,
  messageId: string,
  status: DeliveryStatus,
  now: string,
): Promise<void> {
  await setStatusStatement.execute(trx, {
    id: Number(messageId),
    status,
    now,
  })
}

// Run for every message sent (see PreparedStatement).
const takePendingReports = new PreparedStatement(
  'take pending reports',
  (db, p: { providerMessageId: string; family: ChannelFamily }) =>
    db
      .deleteFrom('pending_status_updates')
      .where('provider_message_id', '=', p.providerMessageId)
      .where('family', '=', p.family)
      .returning('status'),
)

const setStatusStatement = new PreparedStatement(
  'set message status',
  (db, p: { id: number; status: DeliveryStatus; now: string }) =>
    db
      .updateTable('messages')
      .set({ status: p.status, updated_at: p.now })
      .where('id', '=', p.id),
)
