import type { Kysely } from 'kysely'
import type { PageWindow } from './reads.js'
import { type ParleySchema, readId, readTimestamp } from './schema.js'

/** The two durable queues, by their public names. */
export type QueueName = 'dispatch' | 'inbound'

/** A job or event that failed for good. */
export interface DeadLetter {
  /** The queue it failed in: `dispatch` (outbound) or `inbound`. */
  readonly queue: QueueName
  /** The job's (dispatch) or event's (inbound) id; replay uses it. */
  readonly id: string
  /** The outbound message (dispatch), or the threaded message if any. */
  readonly messageId: string | null
  /** The provider's id of an inbound event. */
  readonly providerMessageId: string | null
  /** Attempts made before it was given up. */
  readonly attempts: number
  /** The last attempt's error, if one was recorded. */
  readonly lastError: string | null
  /** When it was dead-lettered (UTC, milliseconds). */
  readonly failedAt: string
}

/** Dead letters of one queue, most recent first. */
export async function listDeadLetters(
  db: Kysely<ParleySchema>,
  queue: QueueName,
  window: PageWindow,
): Promise<{ items: DeadLetter[]; total: number }> {
  const offset = (window.page - 1) * window.pageSize
  if (queue === 'dispatch') {
    const rows = await db
      .selectFrom('dispatch_jobs')
      .select(['id', 'message_id', 'attempts', 'last_error', 'updated_at'])
      .where('state', '=', 'dead')
      .orderBy('updated_at', 'desc')
      .orderBy('id', 'desc')
      .limit(window.pageSize)
      .offset(offset)
      .execute()
    const items = rows.map((row) => ({
      queue,
      id: readId(row.id),
      messageId: readId(row.message_id),
      providerMessageId: null,
      attempts: Number(row.attempts),
      lastError: row.last_error,
      failedAt: readTimestamp(row.updated_at),
    }))
    return { items, total: await countDead(db, 'dispatch_jobs') }
  }
  const rows = await db
    .selectFrom('inbound_events')
    .select([
      'id',
      'message_id',
      'provider_message_id',
      'attempts',
      'last_error',
      'updated_at',
    ])
    .where('state', '=', 'dead')
    .orderBy('updated_at', 'desc')
    .orderBy('id', 'desc')
    .limit(window.pageSize)
    .offset(offset)
    .execute()
  const items = rows.map((row) => ({
    queue,
    id: readId(row.id),
    messageId: row.message_id === null ? null : readId(row.message_id),
    providerMessageId: row.provider_message_id,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    failedAt: readTimestamp(row.updated_at),
  }))
  return { items, total: await countDead(db, 'inbound_events') }
}

async function countDead(
  db: Kysely<ParleySchema>,
  table: 'dispatch_jobs' | 'inbound_events',
): Promise<number> {
  const { total } = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number | string>().as('total'))
    .where('state', '=', 'dead')
    .executeTakeFirstOrThrow()
  return Number(total)
}

/**
 * Puts a dead letter back in its queue, due now, with a fresh attempt
 * count; a dispatch job's message goes back to `queued`. Resolves false
 * when no dead letter has that id.
 */
export async function replayDeadLetter(
  trx: Kysely<ParleySchema>,
  queue: QueueName,
  id: number,
  now: string,
): Promise<boolean> {
  const table = queue === 'dispatch' ? 'dispatch_jobs' : 'inbound_events'
  const revived = await trx
    .updateTable(table)
    .set({
      state: 'pending',
      attempts: 0,
      run_at: now,
      locked_until: null,
      claim_token: null,
      updated_at: now,
    })
    .where('id', '=', id)
    .where('state', '=', 'dead')
    .executeTakeFirst()
  if (Number(revived.numUpdatedRows) !== 1) return false
  if (queue === 'dispatch') await requeueMessage(trx, id, now)
  return true
}

async function requeueMessage(
  trx: Kysely<ParleySchema>,
  jobId: number,
  now: string,
): Promise<void> {
  await trx
    .updateTable('messages')
    .set({ status: 'queued', updated_at: now })
    .where('id', '=', (eb) =>
      eb
        .selectFrom('dispatch_jobs')
        .select('message_id')
        .where('id', '=', jobId),
    )
    .execute()
}
