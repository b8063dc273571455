/**
 * Deno: Parley on Postgres through pg, in a schema made for this run.
 * Run by test/deno.test.ts, which makes the schema and passes it in
 * PARLEY_DENO_POSTGRES_URL and PARLEY_DENO_POSTGRES_SCHEMA.
 */
import { openPostgres } from '@parley/core/postgres'
import { sendReceiveList } from './scenario.ts'

Deno.test('sends, receives and lists on Postgres through pg', async () => {
  const db = openPostgres({
    connectionString: Deno.env.get('PARLEY_DENO_POSTGRES_URL')!,
    schema: Deno.env.get('PARLEY_DENO_POSTGRES_SCHEMA')!,
    poolMax: 2,
  })
  try {
    await sendReceiveList(db)
  } finally {
    await db.close()
  }
})
