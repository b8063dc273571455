/**
 * Readiness probes and the queue gauges against a Postgres that stalls (a
 * table lock held by another session): they answer within their time
 * limit, and the reads they gave up on are cancelled, so they never keep
 * the pool's connections from the rest of the API (issue 9).
 */
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { createParley } from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { ping } from '../src/store/migrations.js'
import {
  dropProcessDatabase,
  freshSchema,
  processDatabase,
} from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'

const skip = await postgresSkipReason('the stalled-read tests')
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

afterAll(() => dropProcessDatabase())

// A migrated schema behind a pool of two, and a session of its own that
// can lock a table until released.
async function stalledSetup() {
  const fresh = await freshSchema(await processDatabase())
  cleanups.push(() => fresh.drop())
  const db = openPostgres({
    connectionString: fresh.url,
    schema: fresh.name,
    poolMax: 2,
  })
  cleanups.push(() => db.close())
  const parley = await createParley({ db, providers: [] })
  const locker = new pg.Client({ connectionString: fresh.url })
  locker.on('error', () => undefined)
  await locker.connect()
  cleanups.push(async () => {
    await locker.query('rollback').catch(() => undefined)
    await locker.end()
  })
  const lock = async (table: string) => {
    await locker.query('begin')
    await locker.query(
      `lock table ${fresh.name}.${table} in access exclusive mode`,
    )
  }
  return { db, parley, lock }
}

// Whether a query that touches no locked table gets a connection and
// answers within `ms`.
async function poolAnswers(
  db: Parameters<typeof ping>[0],
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const answered = ping(db).then(() => true as const)
  answered.catch(() => undefined)
  const result = await Promise.race([answered, late])
  clearTimeout(timer)
  return result
}

describe.skipIf(skip !== undefined)('reads against a stalled Postgres', () => {
  it('cancels the queries of readiness probes that timed out, so repeated probes leave the pool free', async () => {
    const { db, parley, lock } = await stalledSetup()
    await lock('parley_migrations')

    for (let probe = 0; probe < 4; probe++) {
      const report = await parley.readiness({ timeoutMs: 300 })
      expect(report.ready).toBe(false)
      expect(report.reason).toMatch(/^database: /)
    }
    const concurrent = await Promise.all(
      Array.from({ length: 6 }, () => parley.readiness({ timeoutMs: 300 })),
    )
    for (const report of concurrent) expect(report.ready).toBe(false)

    expect(await poolAnswers(db, 1000)).toBe(true)
  })

  it('leaves the queue gauges out and reads stats_up 0 within the time limit, and frees the connection', async () => {
    const { db, parley, lock } = await stalledSetup()
    await lock('dispatch_jobs')

    for (let scrape = 0; scrape < 2; scrape++) {
      const started = Date.now()
      const families = await parley.metrics.collect()
      const elapsed = Date.now() - started
      expect(elapsed).toBeLessThan(3000)
      const up = families.find((f) => f.name === 'parley_queue_stats_up')
      expect(up?.samples[0]?.value).toBe(0)
      expect(
        families.some((family) => family.name.startsWith('parley_queue_')) &&
          families.every(
            (family) =>
              !family.name.startsWith('parley_queue_') ||
              family.name === 'parley_queue_stats_up',
          ),
      ).toBe(true)
    }
    expect(await poolAnswers(db, 1000)).toBe(true)
  })
})
