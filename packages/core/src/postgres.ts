/**
 * Postgres storage for Parley over pg, an optional peer dependency:
 * `import { openPostgres } from '@parley/core/postgres'`. Several Parley
 * instances may share one database: queue claims skip rows other
 * instances hold, and every uniqueness rule is a constraint.
 *
 * @packageDocumentation
 */
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { ParleyDatabase, ParleySchema } from './store/schema.js'

/** Options of {@link openPostgres}. */
export interface PostgresOptions {
  /** A `postgres://` or `postgresql://` URL. */
  connectionString: string
  /**
   * Most connections in the pool, 1 to 1000.
   * @default 10
   */
  poolMax?: number
  /**
   * How long a query may wait for a free connection, in ms.
   * @default 10000
   */
  connectionTimeoutMs?: number
  /**
   * The schema Parley's tables live in (it must exist); for several
   * deployments, or tests, sharing one database.
   * @default the server's search_path (usually `public`)
   */
  schema?: string
}

/**
 * Opens a pool to a Postgres database for Parley. Call `migrateToLatest`
 * (or let `createParley` do it) before use. Timestamps are `timestamptz`
 * and every session runs in UTC, so the process's own time zone never
 * changes a stored or returned instant.
 */
export function openPostgres(options: PostgresOptions): ParleyDatabase {
  const poolMax = options.poolMax ?? 10
  checkOptions(options.connectionString, poolMax)
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: poolMax,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    options: sessionOptions(options.schema),
  })
  const kysely = new Kysely<ParleySchema>({
    dialect: new PostgresDialect({ pool }),
  })
  return {
    dialect: 'postgres',
    schema: options.schema,
    kysely,
    writeTransaction: (work) => kysely.transaction().execute(work),
    close: () => kysely.destroy(),
  }
}

function sessionOptions(schema: string | undefined): string {
  if (schema === undefined) return '-c TimeZone=UTC'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new RangeError(
      `openPostgres: schema must be a lower-case SQL identifier, got ${schema}`,
    )
  }
  return `-c TimeZone=UTC -c search_path=${schema}`
}

function checkOptions(connectionString: string, poolMax: number): void {
  if (!/^postgres(ql)?:\/\//i.test(connectionString ?? '')) {
    throw new TypeError(
      'openPostgres: connectionString must start with postgres:// or postgresql://',
    )
  }
  if (!Number.isInteger(poolMax) || poolMax < 1 || poolMax > 1000) {
    throw new RangeError(
      `openPostgres: poolMax must be a whole number from 1 to 1000, got ${poolMax}`,
    )
  }
}
