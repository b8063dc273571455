/**
 * SQLite storage for Parley over `node:sqlite`, the SQLite module built
 * into Deno and into Node 22.5 and later:
 * `import { openNodeSqlite } from '@parley/core/node-sqlite'`. It needs no
 * native addon, so it is the storage to use under Deno, which cannot load
 * better-sqlite3. The database file is the same as `@parley/core/sqlite`'s.
 *
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { Kysely } from 'kysely'
import {
  type NodeSqliteDatabase,
  NodeSqliteDialect,
} from './node-sqlite/node-sqlite-dialect.js'
import type { ParleyDatabase } from '@parley/core'
import type { ParleySchema } from './store/schema.js'
import { fileCheck } from './store/sqlite-file.js'
import {
  immediateTransaction,
  sessionPragmas,
  sqliteSession,
  type SqliteSynchronous,
} from './store/sqlite-session.js'

export {
  type NodeSqliteDatabase,
  NodeSqliteDialect,
  type NodeSqliteDialectConfig,
  type NodeSqliteStatement,
  type NodeSqliteValue,
} from './node-sqlite/node-sqlite-dialect.js'
import { checkKnownOptions } from './util/known-options.js'
export type { SqliteSynchronous }

/** Options of {@link openNodeSqlite}. */
export interface NodeSqliteOptions {
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
 * Opens (creating if needed) a SQLite database through `node:sqlite`, in
 * WAL mode, for Parley. Call `migrateToLatest` (or let `createParley` do
 * it) before use.
 *
 * Asynchronous because `node:sqlite` is loaded on first use: on a runtime
 * without it (Node 20, or Node 22 before 22.13 without
 * `--experimental-sqlite`) the promise rejects with an error that says so,
 * and importing this module alone never fails.
 *
 * @example
 * ```ts
 * const parley = await createParley({
 *   db: await openNodeSqlite({ filename: './data/parley.db' }),
 *   providers: [createMockProvider({ family: 'sms' })],
 * })
 * ```
 */
export async function openNodeSqlite(
  options: NodeSqliteOptions,
): Promise<ParleyDatabase> {
  checkKnownOptions('openNodeSqlite', options, [
    'filename',
    'synchronous',
    'busyTimeoutMs',
  ])
  const session = sqliteSession('openNodeSqlite', options)
  const { DatabaseSync } = await loadNodeSqlite()

  if (options.filename !== ':memory:') {
    mkdirSync(dirname(options.filename), { recursive: true })
  }
  const database: NodeSqliteDatabase = new DatabaseSync(options.filename)
  for (const pragma of sessionPragmas(session)) {
    database.exec(`pragma ${pragma}`)
  }

  const kysely = new Kysely<ParleySchema>({
    dialect: new NodeSqliteDialect({ database }),
  })
  const file = fileCheck(options.filename)
  return {
    dialect: 'sqlite',
    kysely,
    writeTransaction: (work) => immediateTransaction(kysely, work),
    checkFile: file?.check,
    close: async () => {
      await kysely.destroy()
      // Only once SQLite let go of the file (see fileCheck).
      file?.close()
    },
  }
}

interface NodeSqliteModule {
  DatabaseSync: new (filename: string) => NodeSqliteDatabase
}

// Loaded here rather than imported at the top so that this module loads on
// every runtime and a missing node:sqlite turns into one clear message. The
// specifier is a variable because Node 20's type definitions have no
// node:sqlite; NodeSqliteModule states the part used.
async function loadNodeSqlite(): Promise<NodeSqliteModule> {
  try {
    const specifier = 'node:sqlite'
    return (await import(specifier)) as NodeSqliteModule
  } catch (error) {
    throw new Error(
      'openNodeSqlite: this runtime has no node:sqlite module (it needs ' +
        'Deno, or Node 22.13 or later; Node 22.5 to 22.12 need ' +
        '--experimental-sqlite). On Node 20 use openSqlite from ' +
        '@parley/core/sqlite, over better-sqlite3.',
      { cause: error },
    )
  }
}
