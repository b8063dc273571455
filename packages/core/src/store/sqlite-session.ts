import { type Kysely, sql } from 'kysely'
import type { ParleySchema } from './schema.js'

/** How hard SQLite works to keep a commit through a power cut. */
export type SqliteSynchronous = 'FULL' | 'NORMAL'

/** The session settings both SQLite drivers apply, checked. */
export interface SqliteSession {
  readonly synchronous: SqliteSynchronous
  readonly busyTimeoutMs: number
}

/**
 * Checks the options that `openSqlite` and `openNodeSqlite` share and fills
 * in their defaults; `opener` names the function in error messages.
 */
export function sqliteSession(
  opener: string,
  options: {
    filename: string
    synchronous?: SqliteSynchronous
    busyTimeoutMs?: number
  },
): SqliteSession {
  const { filename } = options
  const synchronous = options.synchronous ?? 'FULL'
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000
  if (typeof filename !== 'string' || filename === '') {
    throw new TypeError(`${opener}: filename must be a path, got ${filename}`)
  }
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') {
    throw new RangeError(
      `${opener}: synchronous must be FULL or NORMAL, got ${synchronous}`,
    )
  }
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(
      `${opener}: busyTimeoutMs must be a whole number >= 0, got ${busyTimeoutMs}`,
    )
  }
  return { synchronous, busyTimeoutMs }
}

/**
 * The pragmas of a Parley SQLite session, in order: WAL first, since the
 * synchronous level means something else in rollback-journal mode.
 */
export function sessionPragmas(session: SqliteSession): readonly string[] {
  return [
    'journal_mode = WAL',
    `synchronous = ${session.synchronous}`,
    `busy_timeout = ${session.busyTimeoutMs}`,
    'foreign_keys = ON',
  ]
}

// Kysely's SQLite driver starts transactions with a plain BEGIN, which takes
// the write lock only at the first write and can then fail with SQLITE_BUSY
// instead of waiting. BEGIN IMMEDIATE waits (busy_timeout) up front. The
// driver has one connection guarded by a mutex, so holding it here also
// keeps every other query out of the transaction.
/** Runs `work` in a transaction that holds SQLite's write lock from BEGIN. */
export async function immediateTransaction<T>(
  kysely: Kysely<ParleySchema>,
  work: (trx: Kysely<ParleySchema>) => Promise<T>,
): Promise<T> {
  return kysely.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection)
    try {
      const result = await work(connection)
      await sql`commit`.execute(connection)
      return result
    } catch (error) {
      await sql`rollback`.execute(connection).catch(() => undefined)
      throw error
    }
  })
}
