import type { Kysely } from 'kysely'
import type { QueueName } from './dead-letters.js'
import { type ParleySchema, readTimestamp } from './schema.js'

/** What one durable queue holds now. */
export interface QueueStats {
  readonly queue: QueueName
  /** Rows waiting for their turn, due or not. */
  readonly pending: number
  /** Rows claimed by a worker (leased). */
  readonly running: number
  /** Rows that failed for good (dead letters). */
  readonly dead: number
  /** The earliest `run_at` of a pending row (UTC ISO-8601), if any. */
  readonly oldestPendingRunAt: string | null
}

const TABLES = {
  dispatch: 'dispatch_jobs',
  inbound: 'inbound_events',
} as const satisfies Record<QueueName, string>

/**
 * The query behind {@link readQueueStats}: one queue's unfinished and dead
 * rows, counted by state, with the earliest `run_at` of each state.
 */
export function queueStatsQuery(db: Kysely<ParleySchema>, queue: QueueName) {
  return db
    .selectFrom(TABLES[queue])
    .select((eb) => [
      'state',
      eb.fn.countAll<number | string | bigint>().as('rows'),
      eb.fn.min('run_at').as('oldest'),
    ])
    .where('state', 'in', ['pending', 'running', 'dead'])
    .groupBy('state')
}

/**
 * Counts one queue's rows by state, finished rows aside, in one query. It
 * reads only the `(state, run_at)` index: the cost grows with the rows
 * still in the queue and the dead letters, not with the finished history.
 */
export async function readQueueStats(
  db: Kysely<ParleySchema>,
  queue: QueueName,
): Promise<QueueStats> {
  const rows = await queueStatsQuery(db, queue).execute()
  const count = (state: string) =>
    Number(rows.find((row) => row.state === state)?.rows ?? 0)
  const oldest = rows.find((row) => row.state === 'pending')?.oldest
  return {
    queue,
    pending: count('pending'),
    running: count('running'),
    dead: count('dead'),
    oldestPendingRunAt:
      oldest === undefined || oldest === null
        ? null
        : readTimestamp(oldest as string | Date),
  }
}
