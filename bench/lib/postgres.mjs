/**
 * Throwaway Postgres databases for the benchmarks: created on the local
 * server (127.0.0.1:5432 unless PARLEY_BENCH_POSTGRES_URL says otherwise),
 * dropped when the benchmark is done with them.
 */
import pg from 'pg'

/** The database new databases are created from. */
export const ADMIN_URL =
  process.env.PARLEY_BENCH_POSTGRES_URL ??
  'postgres://postgres@127.0.0.1:5432/test'

async function admin(statement) {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  client.on('error', () => undefined)
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end()
  }
}

/**
 * Creates an empty database `bench_<time>_<random>` and resolves its URL
 * and a function that drops it.
 */
export async function throwawayDatabase() {
  const name = `bench_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  await admin(`create database ${name}`)
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: () => admin(`drop database if exists ${name} with (force)`),
  }
}

/** Whether Postgres answers; the reason when it does not. */
export async function postgresProblem() {
  try {
    await admin('select 1')
    return undefined
  } catch (error) {
    return error.code ?? error.message
  }
}
