/**
 * The Postgres pool: it survives the server ending its idle connections,
 * keeps a URL's own session options beside Parley's, and refuses a schema
 * that does not exist.
 */
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { openPostgres } from '@parley/core/postgres'
import { migrateToLatest } from '../src/store/migrations.js'
import { isSchemaCurrent, ping } from '../src/store/migrations.js'
import {
  dropProcessDatabase,
  type FreshSchema,
  freshSchema,
  POSTGRES_URL,
  processDatabase,
} from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'

const skip = await postgresSkipReason('the Postgres pool tests')
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

afterAll(() => dropProcessDatabase())

async function schema(): Promise<FreshSchema> {
  const fresh = await freshSchema(await processDatabase())
  cleanups.push(() => fresh.drop())
  return fresh
}

describe.skipIf(skip !== undefined)('the Postgres pool', () => {
  it('logs and survives idle connections the server terminates, then serves again', async () => {
    const fresh = await schema()
    const events: string[] = []
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (event: string) => events.push(event),
      error: (event: string) => events.push(event),
    }
    const db = openPostgres({
      connectionString: fresh.url,
      schema: fresh.name,
      poolMax: 2,
      logger,
    })
    cleanups.push(() => db.close())
    await migrateToLatest(db)
    expect(await isSchemaCurrent(db)).toBe(true)

    const admin = new pg.Client({ connectionString: POSTGRES_URL })
    await admin.connect()
    await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where pid <> pg_backend_pid() and state = 'idle'
         and query like '%idempotency_keys%'`,
    )
    await admin.end()
    await new Promise((resolve) => setTimeout(resolve, 200))

    await ping(db)
    expect(events).toContain('postgres.idle_connection_lost')
  })

  it('survives a connection the server terminates while it is checked out', async () => {
    const fresh = await schema()
    const db = openPostgres({
      connectionString: fresh.url,
      schema: fresh.name,
      poolMax: 1,
    })
    cleanups.push(() => db.close())
    await migrateToLatest(db)

    // Between two statements of a transaction no query is active: the
    // error reaches only the client's own listeners.
    const failed = db.writeTransaction(async (trx) => {
      const { rows } = await sql<{
        pid: number
      }>`select pg_backend_pid() as pid`.execute(trx)
      const admin = new pg.Client({ connectionString: POSTGRES_URL })
      await admin.connect()
      await admin.query('select pg_terminate_backend($1)', [rows[0]?.pid])
      await admin.end()
      await new Promise((resolve) => setTimeout(resolve, 200))
      await sql`select 1`.execute(trx)
    })

    await expect(failed).rejects.toThrow()
    await ping(db)
  })

  it('reports a schema without migrations as not current', async () => {
    const fresh = await schema()
    const db = openPostgres({ connectionString: fresh.url, schema: fresh.name })
    cleanups.push(() => db.close())

    expect(await isSchemaCurrent(db)).toBe(false)
  })
})

describe.skipIf(skip !== undefined)('Postgres session settings', () => {
  it("keeps the URL's own options and still uses its schema and UTC", async () => {
    const fresh = await schema()
    const url = new URL(fresh.url)
    url.searchParams.set('options', '-c statement_timeout=5000')
    const db = openPostgres({
      connectionString: url.toString(),
      schema: fresh.name,
    })
    cleanups.push(() => db.close())

    await migrateToLatest(db)

    const { rows } = await sql<{
      timeout: string
      zone: string
      path: string
      table_schema: string
    }>`select current_setting('statement_timeout') as timeout,
         current_setting('TimeZone') as zone,
         current_setting('search_path') as path,
         (select table_schema from information_schema.tables
          where table_name = 'conversations') as table_schema`.execute(
      db.kysely,
    )
    expect(rows[0]).toEqual({
      timeout: '5s',
      zone: 'UTC',
      path: fresh.name,
      table_schema: fresh.name,
    })
  })

  // The server's DATABASE_URL form, which a library user may pass as it is.
  it.each([
    ['the URL alone', (name: string) => ({ url: name, option: undefined })],
    [
      'the URL and the option alike',
      (name: string) => ({ url: name, option: name }),
    ],
  ])('uses the schema named by %s', async (_, names) => {
    const fresh = await schema()
    const { url, option } = names(fresh.name)
    const withSchema = new URL(fresh.url)
    withSchema.searchParams.set('schema', url)
    const db = openPostgres({
      connectionString: withSchema.toString(),
      schema: option,
    })
    cleanups.push(() => db.close())

    await migrateToLatest(db)

    expect(db.schema).toBe(fresh.name)
    const { rows } = await sql<{ path: string; table_schema: string }>`
      select current_setting('search_path') as path,
        (select table_schema from information_schema.tables
         where table_name = 'conversations') as table_schema`.execute(db.kysely)
    expect(rows[0]).toEqual({ path: fresh.name, table_schema: fresh.name })
  })

  it.each([
    [
      '?schema=a&schema=b',
      undefined,
      'openPostgres: connectionString names more than one schema (a, b)',
    ],
    [
      '?schema=a',
      'b',
      "openPostgres: the schema option (b) and the connectionString's schema parameter (a) differ",
    ],
    [
      '?schema=pg_catalog',
      undefined,
      'openPostgres: schema must not be a system schema, got pg_catalog',
    ],
    [
      '',
      'information_schema',
      'openPostgres: schema must not be a system schema, got information_schema',
    ],
    [
      '?schema=Mixed',
      undefined,
      'openPostgres: schema must be a lower-case SQL identifier, got Mixed',
    ],
  ])(
    'refuses %j with the option %j before connecting',
    (query, option, message) => {
      expect(() =>
        openPostgres({
          connectionString: `postgres://postgres@127.0.0.1:1/none${query}`,
          schema: option,
        }),
      ).toThrow(new RangeError(message))
    },
  )

  it('refuses to migrate into a schema that does not exist, naming it', async () => {
    const fresh = await schema()
    await fresh.drop()
    const db = openPostgres({ connectionString: fresh.url, schema: fresh.name })
    cleanups.push(() => db.close())

    await expect(migrateToLatest(db)).rejects.toThrow(
      `schema ${fresh.name} does not exist`,
    )
    const { rows } = await sql`select 1 from pg_namespace
      where nspname = ${fresh.name}`.execute(db.kysely)
    expect(rows).toHaveLength(0)
  })
})
