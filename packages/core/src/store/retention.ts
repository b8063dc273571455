import type { Compilable, Kysely } from 'kysely'
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
  const statements = pruneStatements(db, request)
  const counts: Partial<Record<PrunedTable, number>> = {}
  for (const table of PRUNED_TABLES) {
    const result = await statements[table].executeTakeFirst()
    counts[table] = Number(result.numDeletedRows)
  }
  return counts as PruneCounts
}

/** The tables retention prunes, in the order a pass visits them. */
export const PRUNED_TABLES: readonly PrunedTable[] = [
  'dispatch_jobs',
  'inbound_events',
  'idempotency_keys',
  'rate_limit_buckets',
  'pending_status_updates',
]

/**
 * The delete statement of each table for one pass (exported so that a
 * test can check each one finds its rows through an index). Every one
 * deletes the rows a bounded sub-select names, oldest first, through an
 * index of migration 0004 (or 0001's `expires_at` index).
 */
export function pruneStatements(
  db: Db,
  request: PruneRequest,
): Readonly<Record<PrunedTable, DeleteStatement>> {
  const cutoffMs = request.now - request.retentionMs
  const cutoff = new Date(cutoffMs).toISOString()
  const limit = request.batchSize
  return {
    dispatch_jobs: db
      .deleteFrom('dispatch_jobs')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('dispatch_jobs')
          .select('id')
          .where('state', '=', 'done')
          .where('updated_at', '<', cutoff)
          .orderBy('updated_at')
          .limit(limit),
      ),
    inbound_events: db
      .deleteFrom('inbound_events')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('inbound_events')
          .select('id')
          .where('state', '=', 'done')
          .where('processed_at', '<', cutoff)
          .orderBy('processed_at')
          .limit(limit),
      ),
    idempotency_keys: db
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
      ),
    rate_limit_buckets: db
      .deleteFrom('rate_limit_buckets')
      .where('key', 'in', (eb) =>
        eb
          .selectFrom('rate_limit_buckets')
          .select('key')
          .where('updated_at_ms', '<', cutoffMs)
          .orderBy('updated_at_ms')
          .limit(limit),
      ),
    pending_status_updates: db
      .deleteFrom('pending_status_updates')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('pending_status_updates')
          .select('id')
          .where('received_at', '<', cutoff)
          .orderBy('received_at')
          .limit(limit),
      ),
  }
}

/** One table's bounded delete, ready to run or compile. */
export interface DeleteStatement extends Compilable {
  executeTakeFirst(): Promise<{ numDeletedRows: bigint }>
}
