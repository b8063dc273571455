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
import { checkKnownOptions } from './util/known-options.js'

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
   * deployments, or tests, sharing one database. A lower-case SQL
   * identifier, not a system schema. The connection string may name it
   * instead, as `?schema=name` (the form of the server's DATABASE_URL);
   * when both do, they must agree.
   * @default the URL's `schema` parameter, else the server's search_path
   * (usually `public`)
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
  checkKnownOptions('openPostgres', options, [
    'connectionString',
    'poolMax',
    'connectionTimeoutMs',
    'schema',
    'logger',
  ])
  const poolMax = options.poolMax ?? 10
  checkOptions(options.connectionString, poolMax)
  const { connectionString, urlOptions, urlSchema } = splitUrl(
    options.connectionString,
  )
  const schema = chosenSchema(options.schema, urlSchema)
  const connection = {
    connectionString,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    // Parley's settings come last, so that they win over the URL's own.
    options: [urlOptions, sessionOptions(schema)].join(' ').trim(),
  }
  const logger = options.logger ?? silentLogger
  const pool = new pg.Pool({ ...connection, max: poolMax })
  // An idle pooled connection that the server ends (a restart, a failover,
  // an idle timeout) is reported here; without a listener the process
  // would die of the unhandled 'error' event. The pool drops the client.
  pool.on('error', (error) => {
    logger.warn('postgres.idle_connection_lost', { error: error.message })
  })
  // A connection in use (checked out for a query or a transaction) reports
  // its loss on the client itself, where the pool does not listen: the
  // query under way fails with the error and the pool discards the client
  // on release, but the 'error' event must not go unheard.
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      logger.warn('postgres.connection_lost', { error: error.message })
    })
  })
  const kysely = new Kysely<ParleySchema>({
    dialect: new PostgresDialect({ pool }),
  })
  const listener = new PostgresListener({
    connect: () =>
      new pg.Client({
        ...connection,
        keepAlive: true,
        application_name: listenerName(schema),
      }),
    logger,
  })
  return {
    dialect: 'postgres',
    schema,
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

// pg lets a URL's `options` parameter replace the `options` setting
// outright, which would drop Parley's time zone and search_path: take it
// out of the URL and put it in front of Parley's own. `schema` is Parley's
// parameter (as in the server's DATABASE_URL), which pg would ignore: take
// it out too.
function splitUrl(url: string): {
  connectionString: string
  urlOptions: string
  urlSchema: string | undefined
} {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { connectionString: url, urlOptions: '', urlSchema: undefined }
  }
  const urlOptions = parsed.searchParams.getAll('options').join(' ')
  const schemas = parsed.searchParams.getAll('schema')
  if (schemas.length > 1) {
    throw new RangeError(
      `openPostgres: connectionString names more than one schema (${schemas.join(', ')})`,
    )
  }
  parsed.searchParams.delete('options')
  parsed.searchParams.delete('schema')
  const changed = urlOptions !== '' || schemas.length > 0
  return {
    connectionString: changed ? parsed.toString() : url,
    urlOptions,
    urlSchema: schemas[0],
  }
}

// The schema option, or the URL's; both may name it only if they agree.
function chosenSchema(
  option: string | undefined,
  fromUrl: string | undefined,
): string | undefined {
  if (option !== undefined && fromUrl !== undefined && option !== fromUrl) {
    throw new RangeError(
      `openPostgres: the schema option (${option}) and the connectionString's schema parameter (${fromUrl}) differ`,
    )
  }
  return option ?? fromUrl
}

function sessionOptions(schema: string | undefined): string {
  if (schema === undefined) return '-c TimeZone=UTC'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new RangeError(
      `openPostgres: schema must be a lower-case SQL identifier, got ${schema}`,
    )
  }
  // Postgres keeps its catalogs there; Parley's tables do not belong.
  if (schema === 'information_schema' || schema.startsWith('pg_')) {
    throw new RangeError(
      `openPostgres: schema must not be a system schema, got ${schema}`,
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
