import {
  type Compilable,
  type CompiledQuery,
  type DialectAdapter,
  type Kysely,
  type KyselyPlugin,
  NoResultError,
  type QueryNode,
  type QueryResult,
} from 'kysely'
import type { ParleySchema } from './schema.js'

/** The values a prepared statement takes, by name. */
export type StatementParams = Record<string, string | number | null>

/**
 * A query built and compiled once per database, then run with new values.
 *
 * Building a query with Kysely's builder and compiling it costs more CPU
 * than running it on SQLite, and the hot statements of the write path and
 * the workers have the same shape every time. `build` is called once per
 * database (per dialect adapter), with stand-ins for the values; their
 * positions among the compiled parameters are recorded, and each `execute`
 * fills them in and runs the same SQL text.
 *
 * `build` must pass every value it is given to the query as a parameter,
 * and use nothing else that varies: a value that Kysely would inline into
 * the SQL text (`sql.lit`, `sql.raw`, a value that changes the shape, such
 * as a list whose length varies) is refused when the statement is built.
 */
export class PreparedStatement<P extends StatementParams, R> {
  private readonly compiled = new WeakMap<DialectAdapter, Template<R>>()

  constructor(
    private readonly name: string,
    private readonly build: (
      db: Kysely<ParleySchema>,
      params: P,
    ) => Compilable<R>,
  ) {}

  /** Runs the statement on `db` (a Kysely instance or a transaction). */
  execute(db: Kysely<ParleySchema>, params: P): Promise<QueryResult<R>> {
    return db.executeQuery(this.compile(db, params))
  }

  /**
   * The statement's first row; throws Kysely's `NoResultError` when there
   * is none, as `executeTakeFirstOrThrow` does.
   */
  async takeFirstOrThrow(db: Kysely<ParleySchema>, params: P): Promise<R> {
    const compiled = this.compile(db, params)
    const { rows } = await db.executeQuery(compiled)
    if (rows.length === 0) {
      throw new NoResultError(compiled.query as QueryNode)
    }
    return rows[0]!
  }

  /** The statement's SQL with `params` in place. */
  compile(db: Kysely<ParleySchema>, params: P): CompiledQuery<R> {
    const template = this.templateFor(db)
    const parameters = template.constants.slice()
    for (const [index, name] of template.slots) parameters[index] = params[name]
    return {
      sql: template.sql,
      parameters,
      query: template.query,
      queryId: template.queryId,
    }
  }

  private templateFor(db: Kysely<ParleySchema>): Template<R> {
    const executor = db.getExecutor()
    const known = this.compiled.get(executor.adapter)
    if (known && samePlugins(known.plugins, executor.plugins)) return known
    const template = this.compileTemplate(db)
    this.compiled.set(executor.adapter, template)
    return template
  }

  private compileTemplate(db: Kysely<ParleySchema>): Template<R> {
    const stand = new Map<string, StandIn>()
    const params = new Proxy({} as P, {
      get: (_, name) => {
        if (typeof name !== 'string') return undefined
        let standIn = stand.get(name)
        if (!standIn) stand.set(name, (standIn = new StandIn(name)))
        return standIn
      },
    })
    const query = this.build(db, params).compile()
    const slots: Array<readonly [number, string]> = []
    const constants = query.parameters.map((value, index) => {
      if (value instanceof StandIn) {
        slots.push([index, value.name])
        return undefined
      }
      return value
    })
    if (query.sql.includes(StandIn.MARK)) {
      throw new TypeError(
        `prepared statement ${this.name}: a value was written into the SQL text`,
      )
    }
    for (const name of stand.keys()) {
      if (!slots.some(([, slot]) => slot === name)) {
        throw new TypeError(
          `prepared statement ${this.name}: ${name} is not passed as a parameter`,
        )
      }
    }
    return {
      sql: query.sql,
      constants,
      slots,
      query: query.query,
      queryId: query.queryId,
      plugins: db.getExecutor().plugins,
    }
  }
}

interface Template<R> {
  readonly sql: string
  readonly constants: readonly unknown[]
  readonly slots: ReadonlyArray<readonly [number, string]>
  readonly query: CompiledQuery<R>['query']
  readonly queryId: CompiledQuery<R>['queryId']
  readonly plugins: readonly KyselyPlugin[]
}

// Stands for a value while the statement is built. Anything that would
// turn it into text (an inlined value) gives a mark that is looked for.
class StandIn {
  static readonly MARK = '\u0000parley-stand-in\u0000'
  constructor(readonly name: string) {}
  toString(): string {
    return StandIn.MARK
  }
}

// Transactions copy their Kysely's plugin list: compare the plugins.
function samePlugins(
  a: readonly KyselyPlugin[],
  b: readonly KyselyPlugin[],
): boolean {
  return (
    a.length === b.length && a.every((plugin, index) => plugin === b[index])
  )
}
