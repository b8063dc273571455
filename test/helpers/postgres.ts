/**
 * Postgres for tests: where it is, whether it answers, and a fresh schema
 * per test, so that tests running in parallel never share tables.
 *
 * The URL is `PARLEY_TEST_POSTGRES_URL`, by default
 * `postgres://postgres@127.0.0.1:5432/test`. Schemas and databases made
 * here are named `t_<creation time, base 36>_<random>`; a run drops those
 * that crashed runs left behind more than an hour ago.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

declare module 'vitest' {
  export interface ProvidedContext {
    /** The `postgres` project's database URL (vitest.config.ts). */
    postgresUrl: string
  }
}

/** The database the Postgres tests start from. */
export const POSTGRES_URL =
  process.env.PARLEY_TEST_POSTGRES_URL ??
  'postgres://postgres@127.0.0.1:5432/test'

/** True when running in CI, where every Postgres test must run. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env.CI ?? '')
}

/** `host:port` of a URL, for messages (never its password). */
export function where(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || '5432'}`
  } catch {
    return 'PARLEY_TEST_POSTGRES_URL (not a URL)'
  }
}

/**
 * Connects to `url` and runs one query. Resolves undefined when Postgres
 * answers, or the reason it did not.
 */
export async function probePostgres(
  url: string = POSTGRES_URL,
): Promise<string | undefined> {
  let client: pg.Client
  try {
    client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: 5000,
    })
  } catch (error) {
    return (error as Error).message
  }
  // An error after connecting (the server going away) must not crash us.
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.query('select 1')
    return undefined
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException
    return code ?? message
  } finally {
    await client.end().catch(() => undefined)
  }
}

// Small pools for creating and dropping schemas and databases, one per
// database, apart from the pools under test.
const adminPools = new Map<string, pg.Pool>()

function adminPool(url: string): pg.Pool {
  let pool = adminPools.get(url)
  if (pool === undefined) {
    pool = new pg.Pool({
      connectionString: url,
      max: 2,
      allowExitOnIdle: true,
      connectionTimeoutMillis: 10_000,
    })
    pool.on('error', () => undefined)
    adminPools.set(url, pool)
  }
  return pool
}

async function closeAdminPool(url: string): Promise<void> {
  const pool = adminPools.get(url)
  adminPools.delete(url)
  await pool?.end().catch(() => undefined)
}

const MADE_HERE = /^t_([0-9a-z]{8,9})_[0-9a-z]{8}$/

/** A new schema or database name: `t_<now, base 36>_<8 random>`. */
export function testName(now = Date.now()): string {
  const random = randomBytes(8)
    .toString('base64url')
    .toLowerCase()
    .replace(/[^0-9a-z]/g, '0')
  return `t_${now.toString(36)}_${random.slice(0, 8)}`
}

let processDb: { readonly name: string; readonly url: Promise<string> } | null =
  null

/**
 * A database of this process's own (made on first use, dropped by
 * {@link dropProcessDatabase}), for the schemas of its tests. Kysely's
 * migrator and Parley's readiness check look at every schema of their
 * database by name, and fail when one is dropped under them: a database
 * per process keeps one test file's drops away from every other process's
 * queries. Where the role may not create databases, `url` itself.
 */
export function processDatabase(url: string = POSTGRES_URL): Promise<string> {
  if (processDb === null) {
    const name = testName()
    const made = adminPool(url)
      .query(`create database ${name}`)
      .then(
        () => {
          const own = new URL(url)
          own.pathname = `/${name}`
          return own.toString()
        },
        (error: { code?: string }) => {
          if (error.code === '42501') return url // insufficient_privilege
          throw error
        },
      )
    processDb = { name, url: made }
  }
  return processDb.url
}

/** Drops this process's database, if it made one, with everything in it. */
export async function dropProcessDatabase(
  url: string = POSTGRES_URL,
): Promise<void> {
  if (processDb === null) return
  const { name, url: made } = processDb
  processDb = null
  const own = await made.catch(() => url)
  if (own === url) return
  await closeAdminPool(own)
  await adminPool(url).query(`drop database if exists ${name} with (force)`)
}

/** An empty schema of its own, for one test. */
export interface FreshSchema {
  /** The schema's name (a lower-case SQL identifier). */
  readonly name: string
  /** The URL of its database, without the schema. */
  readonly url: string
  /** `<url>?schema=<name>`: a server's DATABASE_URL, or `openPostgres`'s. */
  readonly databaseUrl: string
  /** Drops the schema and everything in it. Safe to call twice. */
  drop(): Promise<void>
}

/** Creates an empty schema, named by {@link testName}, in `url`. */
export async function freshSchema(
  url: string = POSTGRES_URL,
): Promise<FreshSchema> {
  const name = testName()
  const pool = adminPool(url)
  await pool.query(`create schema ${name}`)
  const databaseUrl = new URL(url)
  databaseUrl.searchParams.set('schema', name)
  let dropped: Promise<void> | undefined
  return {
    name,
    url,
    databaseUrl: databaseUrl.toString(),
    drop: () => {
      dropped ??= pool
        .query(`drop schema if exists ${name} cascade`)
        .then(() => undefined)
      return dropped
    },
  }
}

/**
 * Drops the `t_…` databases and schemas (of `url`'s database) made more
 * than `olderThanMs` ago: what crashed runs left behind. Resolves how many
 * were dropped.
 */
export async function dropStale(
  url: string = POSTGRES_URL,
  olderThanMs = 60 * 60_000,
): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => undefined)
  await client.connect()
  const cutoff = Date.now() - olderThanMs
  const stale = (name: string) => {
    const made = MADE_HERE.exec(name)?.[1]
    return made !== undefined && parseInt(made, 36) < cutoff
  }
  let dropped = 0
  // Another run may drop the same one at the same time.
  const drop = (statement: string) =>
    client.query(statement).then(
      () => (dropped += 1),
      () => undefined,
    )
  try {
    const databases = await client.query<{ name: string }>(
      `select datname as name from pg_database where datname like 't\\_%'`,
    )
    for (const { name } of databases.rows) {
      if (stale(name)) await drop(`drop database ${name} with (force)`)
    }
    const schemas = await client.query<{ name: string }>(
      `select nspname as name from pg_namespace where nspname like 't\\_%'`,
    )
    for (const { name } of schemas.rows) {
      if (stale(name)) await drop(`drop schema ${name} cascade`)
    }
    return dropped
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Whether the Postgres half of the storage suite runs, and if not why. */
export interface PostgresForTests {
  readonly url: string
  /** Why the Postgres tests are skipped, or null when they run. */
  readonly skip: string | null
}

/**
 * Decides, once per process, whether the Postgres tests run. Postgres
 * answering: they run (and what crashed runs left behind is dropped).
 * Unreachable with `CI=true`: rejects, since CI must test both dialects.
 * Unreachable otherwise: prints one line saying so and they are skipped.
 */
export function postgresForTests(
  url: string = POSTGRES_URL,
): Promise<PostgresForTests> {
  // vitest loads its config once per project; decide (and print) once.
  const memo = globalThis as { [DECIDED]?: Promise<PostgresForTests> }
  memo[DECIDED] ??= decide(url)
  return memo[DECIDED]
}

const DECIDED = Symbol.for('parley.test.postgres')

async function decide(url: string): Promise<PostgresForTests> {
  const failure = await probePostgres(url)
  if (failure === undefined) {
    await dropStale(url)
    return { url, skip: null }
  }
  const unreachable = `Postgres at ${where(url)} is unreachable (${failure})`
  if (inCi()) {
    throw new Error(
      `${unreachable}, and with CI=true the Postgres half of the storage ` +
        'suite must run: start Postgres (.ci/run does) or point ' +
        'PARLEY_TEST_POSTGRES_URL at one',
    )
  }
  const skip =
    `${unreachable}: skipping the Postgres half of the storage suite ` +
    '(set CI=true to make this an error)'
  console.warn(skip)
  return { url, skip }
}
