/**
 * The Postgres pool survives the server ending its idle connections.
 */
import { sql } from 'kysely'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { openPostgres } from '@parley/core/postgres'
import { migrateToLatest } from '../src/store/migrations.js'
import { isSchemaCurrent, ping } from '../src/store/migrations.js'
import {
  type FreshSchema,
  freshSchema,
  POSTGRES_URL,
} from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'

const skip = await postgresSkipReason('the Postgres pool tests')
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function schema(): Promise<FreshSchema> {
  const fresh = await freshSchema()
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
         and query like '%parley_migrations%'`,
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
