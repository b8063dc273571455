/**
 * SQLite storage for Parley over better-sqlite3, an optional peer
 * dependency: `import { openSqlite } from '@parley/core/sqlite'`.
 *
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, type SqliteDatabase, SqliteDialect, sql } from 'kysely'
import type { ParleyDatabase, ParleySchema } from './store/schema.js'

/** How hard SQLite works to keep a commit through a power cut. */
export type SqliteSynchronous = 'FULL' | 'NORMAL'

/** Options of {@link openSqlite}. */
export interface SqliteOptions {
  /**
   * Path of the database file; its folder is created if missing.
   * `:memory:` opens a private in-memory database (for tests).
   */
  filename: string
  /**
   * `FULL` syncs the WAL on every commit, so an accepted message survives a
   * power cut; `NORMAL` may lose the last commits on power loss (never on a
   * process crash) and is faster.
   * @default 'FULL'
   */
  synchronous?: SqliteSynchronous
  /**
   * How long a statement waits for another process's lock, in milliseconds.
   * @default 5000
   */
  busyTimeoutMs?: number
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode for Parley.
 * Call `migrateToLatest` (or let `createParley` do it) before use.
 */
export function openSqlite(options: SqliteOptions): ParleyDatabase {
  const synchronous = options.synchronous ?? 'FULL'
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000
  checkOptions(options.filename, synchronous, busyTimeoutMs)

  const database = openFile(options.filename)
  database.pragma('journal_mode = WAL')
  database.pragma(`synchronous = ${synchronous}`)
  database.pragma(`busy_timeout = ${busyTimeoutMs}`)
  database.pragma('foreign_keys = ON')

  const kysely = new Kysely<ParleySchema>({
    dialect: new SqliteDialect({ database: withStatementCache(database) }),
  })
  return {
    dialect: 'sqlite',
    kysely,
    writeTransaction: (work) => immediateTransaction(kysely, work),
    close: () => kysely.destroy(),
  }
}

function checkOptions(
  filename: string,
  synchronous: string,
  busyTimeoutMs: number,
): void {
  if (typeof filename !== 'string' || filename === '') {
    throw new TypeError(`openSqlite: filename must be a path, got ${filename}`)
  }
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') {
    throw new RangeError(
      `openSqlite: synchronous must be FULL or NORMAL, got ${synchronous}`,
    )
  }
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new RangeError(
      `openSqlite: busyTimeoutMs must be a whole number >= 0, got ${busyTimeoutMs}`,
    )
  }
}

// Kysely's driver prepares every query it runs, and compiling the same SQL
// text again on each request was the largest avoidable cost of the accept
// path (docs/benchmarks.md). Prepared statements are kept by their text,
// the least recently used dropped past STATEMENT_CACHE_SIZE; a statement
// still iterating (a streamed query) is never handed out twice.
const STATEMENT_CACHE_SIZE = 256

function withStatementCache(database: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>()
  return {
    close: () => database.close(),
    prepare: (text) => {
      const cached = cache.get(text)
      cache.delete(text)
      const statement = cached && !cached.busy ? cached : database.prepare(text)
      cache.set(text, statement)
      if (cache.size > STATEMENT_CACHE_SIZE) {
        cache.delete(cache.keys().next().value as string)
      }
      return statement
    },
  }
}

function openFile(filename: string): Database.Database {
  if (filename !== ':memory:') {
    mkdirSync(dirname(filename), { recursive: true })
  }
  return new Database(filename)
}

// Kysely's SQLite driver starts transactions with a plain BEGIN, which takes
// the write lock only at the first write and can then fail with SQLITE_BUSY
// instead of waiting. BEGIN IMMEDIATE waits (busy_timeout) up front. The
// driver has one connection guarded by a mutex, so holding it here also
// keeps every other query out of the transaction.
async function immediateTransaction<T>(
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
