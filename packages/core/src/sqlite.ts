/**
 * SQLite storage for Parley over better-sqlite3, an optional peer
 * dependency: `import { openSqlite } from '@parley/core/sqlite'`.
 *
 * @packageDocumentation
 */
// (This value import comes first: the declaration bundle drops it, and with
// it the comment above, which must not land on a kept import.)
import { openBetterSqlite } from './store/better-sqlite.js'
import type Database from 'better-sqlite3'
import type { ParleyDatabase } from '@parley/core'
import type { SqliteSynchronous } from './store/sqlite-session.js'
import { checkKnownOptions } from './util/known-options.js'

export type { SqliteSynchronous }

/** Options of {@link openSqlite}. */
export interface SqliteOptions {
  /**
   * Path of the database file; its folder is created if missing.
   * `:memory:` opens a private in-memory database (for tests).
   */
  filename: string
  /**
   * `FULL` makes every write transaction durable before it resolves, so an
   * accepted message survives a power cut (the WAL is synced after the
   * commit, off the event loop: see {@link openSqlite}); `NORMAL` may lose
   * the last commits on power loss (never on a process crash) and is
   * faster.
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
 *
 * With `synchronous: 'FULL'` on a file, the connection itself runs with
 * `synchronous = NORMAL` and each write transaction resolves only once an
 * fsync of the WAL, made on libuv's thread pool and shared by the commits
 * made before it started, has completed: the durability of FULL without
 * blocking the event loop for every sync. A failed fsync fails the writes
 * waiting for it and every later one, and `checkFile` (readiness) reports
 * it, until the process restarts.
 */
export function openSqlite(options: SqliteOptions): ParleyDatabase {
  checkKnownOptions('openSqlite', options, [
    'filename',
    'synchronous',
    'busyTimeoutMs',
    'wrapDatabase',
  ])
  return openBetterSqlite(options)
}
