/**
 * LISTEN/NOTIFY on Postgres: one dedicated listening session per pool,
 * notifications between pools, reconnection after the session is killed,
 * Parley instances that wake each other's idle workers, and pooled
 * connections that the server ends while they are in use.
 */
import { type Kysely, sql } from 'kysely'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  type LogFields,
  type Logger,
  type Parley,
  type ParleyDatabase,
  migrateToLatest,
  type ParleySchema,
} from '@parley/core'
import { GroupCommitter } from '../src/store/group-commit.js'
import { openPostgres } from '@parley/core/postgres'
import { pollUntil } from '../../../test/helpers/poll.js'
import {
  dropProcessDatabase,
  type FreshSchema,
  freshSchema,
  POSTGRES_URL,
  processDatabase,
} from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'
import { BULK_LIMITS, smsWebhook } from './support.js'

const skip = await postgresSkipReason('the LISTEN/NOTIFY tests')

const cleanups: Array<() => Promise<void>> = []
let admin: pg.Client | undefined

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

afterAll(async () => {
  await admin?.end()
  await dropProcessDatabase()
})

async function adminClient(): Promise<pg.Client> {
  if (admin) return admin
  admin = new pg.Client({ connectionString: POSTGRES_URL })
  admin.on('error', () => undefined)
  await admin.connect()
  return admin
}

async function schema(): Promise<FreshSchema> {
  // NOTIFY channels are database-wide: a database of this file's own keeps
  // other test files' wake-ups out of what these tests count.
  const fresh = await freshSchema(await processDatabase())
  cleanups.push(() => fresh.drop())
  return fresh
}

function open(fresh: FreshSchema, logger?: Logger): ParleyDatabase {
  const db = openPostgres({
    connectionString: fresh.url,
    schema: fresh.name,
    poolMax: 3,
    logger,
  })
  cleanups.push(() => db.close())
  return db
}

/** The backends of this schema's listening sessions. */
async function listenerPids(fresh: FreshSchema): Promise<number[]> {
  const client = await adminClient()
  const { rows } = await client.query<{ pid: number }>(
    'select pid from pg_stat_activity where application_name = $1',
    [`parley-listener ${fresh.name}`],
  )
  return rows.map((row) => row.pid)
}

function recordingLogger(): Logger & { events: string[] } {
  const events: string[] = []
  const log = (event: string, _fields?: LogFields) => {
    events.push(event)
  }
  return { events, debug: log, info: log, warn: log, error: log }
}

describe.skipIf(skip !== undefined)('Postgres LISTEN/NOTIFY', () => {
  it('delivers a notification sent through one pool to a subscriber of another', async () => {
    const fresh = await schema()
    const sender = open(fresh)
    const receiver = open(fresh)
    const received: Array<string | undefined> = []
    await receiver.subscribe!('parley_dispatch', (payload) => {
      received.push(payload)
    })

    await sender.notify!('parley_dispatch', 'hello')

    await pollUntil(() => received.length > 0, { timeoutMs: 5000 })
    expect(received).toEqual(['hello'])
  })

  it('listens on every channel over one dedicated session, closed with the last subscription', async () => {
    const fresh = await schema()
    const db = open(fresh)

    const stops = await Promise.all([
      db.subscribe!('parley_dispatch', () => undefined),
      db.subscribe!('parley_inbound', () => undefined),
      db.subscribe!('parley_inbound', () => undefined),
    ])
    expect(await listenerPids(fresh)).toHaveLength(1)

    for (const stop of stops) await stop()
    await pollUntil(async () => (await listenerPids(fresh)).length === 0, {
      timeoutMs: 5000,
    })
  })

  it('reconnects after its session is killed, says so, and delivers again', async () => {
    const fresh = await schema()
    const logger = recordingLogger()
    const db = open(fresh, logger)
    const received: Array<string | undefined> = []
    await db.subscribe!('parley_inbound', (payload) => {
      received.push(payload)
    })
    const [pid] = await listenerPids(fresh)

    const client = await adminClient()
    await client.query('select pg_terminate_backend($1)', [pid])

    // The reconnected session reports that notifications may be lost.
    await pollUntil(() => received.includes(undefined), { timeoutMs: 10_000 })
    await db.notify!('parley_inbound', 'after')
    await pollUntil(() => received.includes('after'), { timeoutMs: 5000 })
    expect(logger.events).toContain('postgres.listener_lost')
    expect(await listenerPids(fresh)).not.toContain(pid)
  })

  it('keeps delivering to other handlers when one throws', async () => {
    const fresh = await schema()
    const logger = recordingLogger()
    const db = open(fresh, logger)
    const received: string[] = []
    await db.subscribe!('parley_dispatch', () => {
      throw new Error('boom')
    })
    await db.subscribe!('parley_dispatch', (payload) => {
      received.push(payload ?? '')
    })

    await db.notify!('parley_dispatch', 'x')

    await pollUntil(() => received.length === 1, { timeoutMs: 5000 })
    expect(logger.events).toContain('postgres.notification_handler_failed')
  })
})

/** Two Parley instances on one schema, polling only once a minute. */
async function twoInstances(
  fresh: FreshSchema,
  options: { listen: boolean },
): Promise<{ front: Parley; worker: Parley; workerDb: ParleyDatabase }> {
  const config = { ...BULK_LIMITS, pollIntervalMs: 60_000 }
  const providers = [createMockProvider({ family: 'sms' })]
  const frontDb = open(fresh)
  const workerDb = options.listen
    ? open(fresh)
    : withoutNotifications(open(fresh))
  const front = await createParley({ db: frontDb, providers, config })
  const worker = await createParley({ db: workerDb, providers, config })
  cleanups.push(async () => {
    await worker.stop({ graceMs: 1000 })
    await front.stop({ graceMs: 1000 })
  })
  // The front instance takes requests and runs no workers: only the
  // worker instance can thread what it accepts. Its first look for work
  // (at start) must be over before the test queues any.
  await worker.start()
  await new Promise((resolve) => setTimeout(resolve, 500))
  return { front, worker, workerDb }
}

// The same database, as a driver without notifications would offer it.
function withoutNotifications(db: ParleyDatabase): ParleyDatabase {
  const { notify: _notify, subscribe: _subscribe, ...rest } = db
  return { ...rest, close: () => db.close() }
}

describe.skipIf(skip !== undefined)('Parley instances on one Postgres', () => {
  it("wake another instance's idle worker at once instead of at its next poll", async () => {
    const fresh = await schema()
    const { front, worker } = await twoInstances(fresh, { listen: true })

    const started = performance.now()
    await front.receive(smsWebhook({ messaging_provider_id: 'SM-wake' }), {
      channel: 'sms',
    })
    // The worker counts the event once its commit returns, a moment after
    // the conversation reads back: wait for both.
    await pollUntil(
      async () =>
        (await worker.conversations.list()).total === 1 &&
        worker.metrics.snapshot().worker_processed > 0,
      { timeoutMs: 10_000, intervalMs: 5 },
    )

    // The poll interval is a minute: only the notification explains this.
    expect(performance.now() - started).toBeLessThan(2000)
    expect(worker.metrics.snapshot().worker_processed).toBe(1)
  })

  it('leave the work to the next poll when the database has no notifications', async () => {
    const fresh = await schema()
    const { front, worker } = await twoInstances(fresh, { listen: false })

    await front.receive(smsWebhook({ messaging_provider_id: 'SM-poll' }), {
      channel: 'sms',
    })
    await new Promise((resolve) => setTimeout(resolve, 1000))

    expect(worker.metrics.snapshot().worker_processed).toBe(0)
  })
})

describe.skipIf(skip !== undefined)('Postgres connections in use', () => {
  it.each([
    ['a transaction', true],
    ['a checked-out query', false],
  ])(
    'survives the server ending a connection during %s, and serves again',
    async (_, inTransaction) => {
      const fresh = await schema()
      const logger = recordingLogger()
      const db = open(fresh, logger)
      const client = await adminClient()
      const terminate = (pid: number) =>
        client.query('select pg_terminate_backend($1)', [pid])

      const run = async (kysely: Kysely<ParleySchema>) => {
        const { rows } = await sql<{
          pid: number
        }>`select pg_backend_pid() as pid`.execute(kysely)
        await terminate(rows[0]!.pid)
        // Let the 'error' event arrive before the next query is sent.
        await new Promise((resolve) => setTimeout(resolve, 100))
        await sql`select 1`.execute(kysely)
      }
      const work = inTransaction
        ? db.kysely.transaction().execute(run)
        : db.kysely.connection().execute(run)

      await expect(work).rejects.toThrow()
      await pollUntil(
        () => logger.events.includes('postgres.connection_lost'),
        {
          timeoutMs: 5000,
        },
      )
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(
        db.kysely,
      )
      expect(rows).toEqual([{ one: 1 }])
    },
  )
})

describe.skipIf(skip !== undefined)('Group commits of two instances', () => {
  it('lock shared conversations in one order, so opposite arrival orders cannot deadlock', async () => {
    const fresh = await schema()
    const one = open(fresh)
    const two = open(fresh)
    await migrateToLatest(one)
    await sql`insert into conversations
      (key, channel, participant_a, participant_b, message_count,
       last_activity_at, created_at)
      values
      ('x', 'sms', 'a', 'b', 0, now(), now()),
      ('y', 'sms', 'c', 'd', 0, now(), now())`.execute(one.kysely)
    const runs: string[] = []
    const started = { one: deferred(), two: deferred() }
    const touch =
      (who: 'one' | 'two', key: string, waitForOther: boolean) =>
      async (trx: Kysely<ParleySchema>) => {
        runs.push(`${who}:${key}`)
        started[who].resolve()
        await sql`update conversations set message_count = message_count + 1
          where key = ${key}`.execute(trx)
        // Hold this row until the other instance's batch has begun, so the
        // two transactions overlap (or give up after a second).
        if (waitForOther) {
          const other = who === 'one' ? started.two : started.one
          await Promise.race([other.promise, sleep(1000)])
        }
      }
    const first = new GroupCommitter(one, 512)
    const second = new GroupCommitter(two, 512)

    // Instance one is given y then x; instance two x then y.
    await Promise.all([
      first.submit(touch('one', 'y', true), 'conversation:y'),
      first.submit(touch('one', 'x', true), 'conversation:x'),
      second.submit(touch('two', 'x', true), 'conversation:x'),
      second.submit(touch('two', 'y', true), 'conversation:y'),
    ])

    // A deadlock would have rolled one batch back and run its writes again.
    expect(runs.sort()).toEqual(['one:x', 'one:y', 'two:x', 'two:y'])
    const { rows } = await sql<{
      key: string
      message_count: number
    }>`select key, message_count from conversations order by key`.execute(
      one.kysely,
    )
    expect(rows).toEqual([
      { key: 'x', message_count: 2 },
      { key: 'y', message_count: 2 },
    ])
  })
})

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => undefined as void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
