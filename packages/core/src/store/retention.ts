import type { Kysely } from 'kysely'
import type { ParleySchema } from './schema.js'

/** What one pruning pass may delete, and from when. */
export interface PruneRequest {
  /** Now, ms since the epoch. */
  readonly now: number
  /** How long a row is kept once it stopped mattering, in ms. */
  readonly retentionMs: number
  /** Most rows one statement deletes. */
  readonly batchSize: number
}

/** The tables retention prunes. */
export type PrunedTable =
  | 'dispatch_jobs'
  | 'inbound_events'
  | 'idempotency_keys'
  | 'rate_limit_buckets'
  | 'pending_status_updates'

/** Rows deleted by one pass, per table. */
export type PruneCounts = Readonly<Record<PrunedTable, number>>

type Db = Kysely<ParleySchema>

/**
 * Deletes, from each table, at most `batchSize` rows that stopped
 * mattering more than `retentionMs` ago (DESIGN section 8):
 *
 * - dispatch jobs finished (`done`) before the cutoff: their messages stay;
 * - inbound events processed before the cutoff, which ends the webhook
 *   dedupe window for their provider ids;
 * - idempotency keys that expired before the cutoff;
 * - rate-limit buckets last used before the cutoff: a bucket refills
 *   within a minute, so a row idle that long is full and answers exactly
 *   as a missing row does;
 * - delivery reports still waiting for their message, received before the
 *   cutoff.
 *
 * Dead letters, messages and conversations are never deleted. Each table
 * is one short statement of its own (no transaction spans two), so a pass
 * never holds a lock for long; call it again while any count equals
 * `batchSize`.
 */
export async function pruneExpired(
  db: Db,
  request: PruneRequest,
): Promise<PruneCounts> {
  const cutoffMs = request.now - request.retentionMs
  const cutoff = new Date(cutoffMs).toISOString()
  const limit = request.batchSize
  return {
    dispatch_jobs: await pruneFinishedJobs(db, cutoff, limit),
    inbound_events: await pruneProcessedEvents(db, cutoff, limit),
    idempotency_keys: await pruneExpiredKeys(db, cutoff, limit),
    rate_limit_buckets: await pruneIdleBuckets(db, cutoffMs, limit),
    pending_status_updates: await pruneStaleReports(db, cutoff, limit),
  }
}

// Every statement below deletes the rows a bounded sub-select names, found
// through an index of migration 0004, oldest first.

async function pruneFinishedJobs(
  db: Db,
  cutoff: string,
  limit: number,
): Promise<number> {
  const result = await db
    .deleteFrom('dispatch_jobs')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('dispatch_jobs')
        .select('id')
        .where('state', '=', 'done')
        .where('updated_at', '<', cutoff)
        .orderBy('updated_at')
        .limit(limit),
    )
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

async function pruneProcessedEvents(
  db: Db,
  cutoff: string,
  limit: number,
): Promise<number> {
  const result = await db
    .deleteFrom('inbound_events')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('inbound_events')
        .select('id')
        .where('state', '=', 'done')
        .where('processed_at', '<', cutoff)
        .orderBy('processed_at')
        .limit(limit),
    )
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

async function pruneExpiredKeys(
  db: Db,
  cutoff: string,
  limit: number,
): Promise<number> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where((eb) =>
      eb(
        eb.refTuple('scope', 'key'),
        'in',
        eb
          .selectFrom('idempotency_keys')
          .select(['scope', 'key'])
          .where('expires_at', '<', cutoff)
          .orderBy('expires_at')
          .limit(limit)
          .$asTuple('scope', 'key'),
      ),
    )
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

async function pruneIdleBuckets(
  db: Db,
  cutoffMs: number,
  limit: number,
): Promise<number> {
  const result = await db
    .deleteFrom('rate_limit_buckets')
    .where('key', 'in', (eb) =>
      eb
        .selectFrom('rate_limit_buckets')
        .select('key')
        .where('updated_at_ms', '<', cutoffMs)
        .orderBy('updated_at_ms')
        .limit(limit),
    )
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

async function pruneStaleReports(
  db: Db,
  cutoff: string,
  limit: number,
): Promise<number> {
  const result = await db
    .deleteFrom('pending_status_updates')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('pending_status_updates')
        .select('id')
        .where('received_at', '<', cutoff)
        .orderBy('received_at')
        .limit(limit),
    )
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
