/**
 * SQLite storage for Parley over better-sqlite3, an optional peer
 * dependency: `import { openSqlite } from '@parley/core/sqlite'`.
 *
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'
import type { ParleyDatabase } from '@parley/core'
import type { ParleySchema } from './store/schema.js'
import { fileCheck } from './store/sqlite-file.js'
import {
  immediateTransaction,
  sessionPragmas,
  sqliteSession,
  type SqliteSynchronous,
} from './store/sqlite-session.js'

export type { SqliteSynchronous }

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
  /**
   * Wraps the opened better-sqlite3 handle before Parley uses it, to
   * instrument statements or, in tests, to make them fail on demand. The
   * wrapper must behave as the handle it is given.
   * @default none
   */
  wrapDatabase?: (database: Database.Database) => Database.Database
}

/**
 * Opens (creating if needed) a SQLite database in WAL mode for Parley.
 * Call `migrateToLatest` (or let `createParley` do it) before use.
 */
export function openSqlite(options: SqliteOptions): ParleyDatabase {
  const session = sqliteSession('openSqlite', options)

  const opened = openFile(options.filename)
  for (const pragma of sessionPragmas(session)) opened.pragma(pragma)
  const database = options.wrapDatabase?.(opened) ?? opened

  const kysely = new Kysely<ParleySchema>({
    dialect: new SqliteDialect({ database: withStatementCache(database) }),
  })
  return {
    dialect: 'sqlite',
    kysely,
    writeTransaction: (work) => immediateTransaction(kysely, work),
    checkFile: fileCheck(options.filename),
    close: () => kysely.destroy(),
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
