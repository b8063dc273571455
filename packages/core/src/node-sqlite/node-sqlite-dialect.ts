import {
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  SqliteDialect,
  type SqliteDatabase,
  type SqliteStatement,
} from 'kysely'

/** A value `node:sqlite` can bind to a statement parameter. */
export type NodeSqliteValue = null | number | bigint | string | Uint8Array

/**
 * The part of a `node:sqlite` `StatementSync` the dialect uses. Structural,
 * so that core compiles without `node:sqlite`'s types (Node 20 has none).
 */
export interface NodeSqliteStatement {
  /** Runs the statement and returns every row. */
  all(...parameters: NodeSqliteValue[]): unknown[]
  /** Runs the statement and reports the rows it changed. */
  run(...parameters: NodeSqliteValue[]): {
    changes: number | bigint
    lastInsertRowid: number | bigint
  }
  /** Runs the statement and yields its rows one by one. */
  iterate(...parameters: NodeSqliteValue[]): Iterator<unknown>
  /**
   * The result columns; empty for a statement that returns no rows. Node
   * added it after `node:sqlite` itself (22.16); Deno has it.
   */
  columns?(): readonly unknown[]
}

/**
 * The part of a `node:sqlite` `DatabaseSync` (Node 22.5 and later, Deno)
 * the dialect uses.
 */
export interface NodeSqliteDatabase {
  /** Compiles one SQL statement. */
  prepare(sql: string): NodeSqliteStatement
  /** Runs SQL text that may hold several statements, without results. */
  exec(sql: string): void
  /** Closes the database file. */
  close(): void
}

/** Options of {@link NodeSqliteDialect}. */
export interface NodeSqliteDialectConfig {
  /** An open `DatabaseSync`; the dialect closes it on `destroy()`. */
  database: NodeSqliteDatabase
}

/**
 * A Kysely dialect over the `node:sqlite` module built into Deno and
 * recent Node versions. It speaks Kysely's SQLite SQL (compiler, adapter,
 * introspector) and drives a `DatabaseSync` through the driver Kysely
 * ships for better-sqlite3, behind a thin statement wrapper.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from 'node:sqlite'
 * const db = new Kysely<Schema>({
 *   dialect: new NodeSqliteDialect({ database: new DatabaseSync(':memory:') }),
 * })
 * ```
 */
export class NodeSqliteDialect implements Dialect {
  readonly #sqlite: SqliteDialect

  constructor(config: NodeSqliteDialectConfig) {
    this.#sqlite = new SqliteDialect({
      database: asKyselyDatabase(config.database),
    })
  }

  /** Kysely's single-connection SQLite driver over the wrapped database. */
  createDriver(): Driver {
    return this.#sqlite.createDriver()
  }

  /** Kysely's SQLite query compiler. */
  createQueryCompiler(): QueryCompiler {
    return this.#sqlite.createQueryCompiler()
  }

  /** Kysely's SQLite adapter. */
  createAdapter(): DialectAdapter {
    return this.#sqlite.createAdapter()
  }

  /** Kysely's SQLite introspector. */
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return this.#sqlite.createIntrospector(db)
  }
}

// Kysely's driver asks a statement whether it returns rows (`reader`) and
// passes parameters as one array; better-sqlite3 works that way, node:sqlite
// takes them spread and knows its result columns instead.
function asKyselyDatabase(database: NodeSqliteDatabase): SqliteDatabase {
  return {
    prepare: (sql) => asKyselyStatement(database.prepare(sql), sql),
    close: () => database.close(),
  }
}

function asKyselyStatement(
  statement: NodeSqliteStatement,
  sql: string,
): SqliteStatement {
  const bind = (parameters: ReadonlyArray<unknown>) =>
    parameters as NodeSqliteValue[]
  return {
    reader: returnsRows(statement, sql),
    all: (parameters) => statement.all(...bind(parameters)),
    run: (parameters) => statement.run(...bind(parameters)),
    iterate: (parameters) => iterable(statement.iterate(...bind(parameters))),
  }
}

// Without columns() (Node 22.5 to 22.15) the statement's text decides:
// a query, or a write with RETURNING. Kysely binds every value as a
// parameter, so the keyword cannot come from a quoted string.
const ROW_RETURNING_SQL = /^\s*(?:select|with|values|pragma)\b|\breturning\b/i

function returnsRows(statement: NodeSqliteStatement, sql: string): boolean {
  if (typeof statement.columns === 'function') {
    return statement.columns().length > 0
  }
  return ROW_RETURNING_SQL.test(sql)
}

function iterable(iterator: Iterator<unknown>): IterableIterator<unknown> {
  return {
    next: () => iterator.next(),
    [Symbol.iterator]() {
      return this
    },
  }
}
