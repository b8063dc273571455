/**
 * Postgres storage for Parley over pg, an optional peer dependency:
 * `import { openPostgres } from '@parley/core/postgres'`. Several Parley
 * instances may share one database: queue claims skip rows other
 * instances hold, every uniqueness rule is a constraint, and instances
 * wake each other's idle workers with LISTEN/NOTIFY.
 *
 * @packageDocumentation
 */
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { PostgresListener } from './postgres-listener.js'
import type { Logger, ParleyDatabase } from '@parley/core'
import type { ParleySchema } from './store/schema.js'
import { silentLogger } from './util/logger.js'

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
  /**
   * Where the listening session reports that it dropped and reconnected.
   * @default silent
   */
  logger?: Logger
}

/**
 * Opens a pool to a Postgres database for Parley. Call `migrateToLatest`
 * (or let `createParley` do it) before use. Timestamps are `timestamptz`
 * and every session runs in UTC, so the process's own time zone never
 * changes a stored or returned instant.
 *
 * Subscriptions (`subscribe`) share one more session, outside the pool,
 * opened with the first one: a deployment uses up to `poolMax + 1`
 * connections per instance.
 */
export function openPostgres(options: PostgresOptions): ParleyDatabase {
  const poolMax = options.poolMax ?? 10
  checkOptions(options.connectionString, poolMax)
  const connection = {
    connectionString: options.connectionString,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    options: sessionOptions(options.schema),
  }
  const logger = options.logger ?? silentLogger
  const pool = new pg.Pool({ ...connection, max: poolMax })
  // An idle pooled connection that the server ends (a restart, a failover,
  // an idle timeout) is reported here; without a listener the process
  // would die of the unhandled 'error' event. The pool drops the client.
  pool.on('error', (error) => {
    logger.warn('postgres.idle_connection_lost', { error: error.message })
  })
  const kysely = new Kysely<ParleySchema>({
    dialect: new PostgresDialect({ pool }),
  })
  const listener = new PostgresListener({
    connect: () =>
      new pg.Client({
        ...connection,
        keepAlive: true,
        application_name: listenerName(options.schema),
      }),
    logger,
  })
  return {
    dialect: 'postgres',
    schema: options.schema,
    kysely,
    writeTransaction: (work) => kysely.transaction().execute(work),
    notify: async (channel, payload) => {
      await sql`select pg_notify(${channel}, ${payload})`.execute(kysely)
    },
    subscribe: (channel, onNotify) => listener.subscribe(channel, onNotify),
    close: async () => {
      await listener.close()
      await kysely.destroy()
    },
  }
}

// Names the listening session in pg_stat_activity, with its schema, so an
// operator can tell the deployments' listeners apart.
function listenerName(schema: string | undefined): string {
  return schema === undefined ? 'parley-listener' : `parley-listener ${schema}`
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
