import { mkdirSync, type Stats } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'
import type { SqliteOptions } from '../sqlite.js'
import type { ParleyDatabase, ParleySchema } from './schema.js'
import { fileCheck, isStorageFault } from './sqlite-file.js'
import {
  immediateTransaction,
  sessionPragmas,
  sqliteSession,
} from './sqlite-session.js'
import {
  committedNotDurable,
  type Fsync,
  refusedWrite,
  WalSync,
} from './wal-sync.js'

/**
 * `openSqlite`, with the fsync of the WAL and the stat of the file check
 * replaceable (tests).
 */
export function openBetterSqlite(
  options: SqliteOptions,
  seams: { fsync?: Fsync; stat?: (path: string) => Stats } = {},
): ParleyDatabase {
  const session = sqliteSession('openSqlite', options)
  const { filename } = options
  const walSync =
    session.synchronous === 'FULL' && filename !== ':memory:'
      ? new WalSync(filename, seams.fsync)
      : undefined

  const opened = openFile(filename)
  // FULL is kept by syncing the WAL off the event loop after each commit
  // (WalSync), so the connection itself need not sync.
  const pragmas = sessionPragmas(
    walSync ? { ...session, synchronous: 'NORMAL' } : session,
  )
  for (const pragma of pragmas) opened.pragma(pragma)
  const database = options.wrapDatabase?.(opened) ?? opened

  // Rows inserted, updated or deleted on this connection since it opened
  // (DDL is not counted, but a migration also records itself in a table).
  // Undefined when it cannot be read (a statement is mid-iteration): the
  // caller then syncs, as if rows had changed.
  const totalChanges = opened.prepare('select total_changes()').pluck()
  const changeCount = (): number | undefined => {
    try {
      return totalChanges.get() as number
    } catch {
      return undefined
    }
  }

  const kysely = new Kysely<ParleySchema>({
    dialect: new SqliteDialect({ database: withStatementCache(database) }),
  })
  const file = fileCheck(filename, seams.stat)

  // A commit into a database file removed, replaced or emptied meanwhile
  // is gone at the next start: the file is checked after every commit
  // that changed rows, before its writes are answered (one stat and a
  // 16-byte read), and once it is found so, nothing is written again
  // until the process restarts, as after a failed sync. A check that
  // could not look (a stat refused for a moment) says nothing of the
  // commit, which SQLite made: the write stands, and readiness reports
  // the trouble while it lasts.
  let fileFailure: Error | undefined
  const checkCommitted = (): void => {
    if (file === undefined) return
    try {
      file.check()
    } catch (error) {
      if (!isStorageFault(error)) return
      fileFailure ??= error as Error
      throw committedNotDurable(error)
    }
  }

  // Only writeTransaction waits for the sync; migrations and every write
  // of the API and the workers go through it. The few writes made straight
  // on `kysely` need no durability of their own: retention's deletes (a
  // lost delete is made again by the next pass) and the release of claims
  // at shutdown (a lost release lets the lease expire, and the work is
  // claimed again). Either is synced by the next durable commit anyway:
  // an fsync covers everything written to the WAL before it.
  return {
    dialect: 'sqlite',
    kysely,
    writeTransaction: async (work) => {
      // Nothing more is committed once a sync or a file check failed.
      walSync?.assertWritable()
      if (fileFailure) throw refusedWrite(fileFailure)
      const before = changeCount()
      const result = await immediateTransaction(kysely, work)
      // A transaction that changed no row (a worker's poll that found
      // nothing to claim) appended nothing to the WAL: no sync and no
      // check, so an idle server does not sync its disk at every poll.
      // Rows changed meanwhile by anything else only make the count
      // differ: the sync then runs, needed or not.
      const after = changeCount()
      if (before === undefined || after === undefined || after !== before) {
        await walSync?.afterCommit()
        checkCommitted()
      }
      return result
    },
    checkFile:
      file &&
      (() => {
        walSync?.check()
        if (fileFailure) throw fileFailure
        file.check()
        walSync?.checkLinked()
      }),
    close: async () => {
      await kysely.destroy()
      // Only once SQLite let go of the file (see fileCheck).
      file?.close()
      await walSync?.close()
    },
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
