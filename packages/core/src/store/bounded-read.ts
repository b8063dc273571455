import { type Kysely, sql } from 'kysely'
import type { ParleyDatabase, ParleySchema } from './schema.js'

/**
 * Runs the reads of `work` under a time limit the database enforces. On
 * Postgres they run on one pool connection with `statement_timeout` set
 * to `ms` (and reset afterwards), so a read stalled behind a lock is
 * cancelled by the server and its connection comes back, instead of
 * staying taken after the caller gave up. No transaction is opened: a
 * read that fails (and is handled by `work`) leaves nothing aborted.
 * SQLite reads run in-process and need no such limit.
 */
export async function boundedRead<T>(
  db: Pick<ParleyDatabase, 'dialect' | 'kysely'>,
  ms: number,
  work: (kysely: Kysely<ParleySchema>) => Promise<T>,
): Promise<T> {
  if (db.dialect !== 'postgres') return work(db.kysely)
  return db.kysely.connection().execute(async (connection) => {
    await sql`set statement_timeout = ${sql.lit(Math.ceil(ms))}`.execute(
      connection,
    )
    try {
      return await work(connection)
    } finally {
      // Back to the session's own setting (the URL's, or none).
      await sql`reset statement_timeout`.execute(connection)
    }
  })
}
