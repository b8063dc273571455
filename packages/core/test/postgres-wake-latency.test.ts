/**
 * Webhook-to-conversation latency on Postgres, with and without
 * LISTEN/NOTIFY, on idle instances:
 * webhooks arrive one at a time, 10 to 30 ms apart. The latency of an
 * event is `processed_at - received_at` (when it was threaded, minus when
 * it was accepted), read from the database in milliseconds.
 *
 * - one instance: it accepts and threads, and wakes its own worker in
 *   process, so notifications change nothing;
 * - two instances: one accepts (it runs no workers), the other threads;
 *   only a notification wakes the latter before its next poll.
 *
 * The assertions only tell a wake-up from a poll, so the test polls every
 * 2 s by default: a loaded CI machine adds tens of milliseconds to a
 * wake-up, never seconds. 10 webhooks per case by default; for the figures
 * of the closing note (the default poll, 200 ms, over 1,000 webhooks) run
 * with `PARLEY_LATENCY_POLL_MS=200 PARLEY_LATENCY_WEBHOOKS=1000`. Each case
 * prints its p50 and p99.
 */
import { sql } from 'kysely'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  type Parley,
  type ParleyDatabase,
} from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { pollUntil } from '../../../test/helpers/poll.js'
import {
  dropProcessDatabase,
  freshSchema,
  processDatabase,
} from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'
import { BULK_LIMITS, smsWebhook } from './support.js'

const skip = await postgresSkipReason('the wake-up latency measurement')
const WEBHOOKS = Number(process.env.PARLEY_LATENCY_WEBHOOKS ?? 10)
const POLL_MS = Number(process.env.PARLEY_LATENCY_POLL_MS ?? 2000)

const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

afterAll(() => dropProcessDatabase())

interface Case {
  readonly instances: 1 | 2
  readonly notifications: boolean
}

interface Latency {
  readonly p50: number
  readonly p99: number
  readonly max: number
}

async function measure({ instances, notifications }: Case): Promise<Latency> {
  const schema = await freshSchema(await processDatabase())
  cleanups.push(() => schema.drop())
  const open = () => {
    const db = openPostgres({
      connectionString: schema.url,
      schema: schema.name,
    })
    cleanups.push(() => db.close())
    return notifications ? db : withoutNotifications(db)
  }
  const worker = await instance(open())
  const front = instances === 1 ? worker : await instance(open())
  await worker.start()
  // Let the worker's first look for work (at start) pass: from here on it
  // is idle, waiting for a wake-up or its next poll.
  await new Promise((resolve) => setTimeout(resolve, 2 * POLL_MS))

  for (let i = 0; i < WEBHOOKS; i += 1) {
    await front.receive(smsWebhook({ messaging_provider_id: `SM-lat-${i}` }), {
      channel: 'sms',
    })
    await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20))
  }
  await pollUntil(
    () => worker.metrics.snapshot().worker_processed === WEBHOOKS,
    { timeoutMs: 30_000 },
  )
  return percentiles(await latencies(open()))
}

async function instance(db: ParleyDatabase): Promise<Parley> {
  const parley = await createParley({
    db,
    providers: [createMockProvider({ family: 'sms' })],
    config: { ...BULK_LIMITS, pollIntervalMs: POLL_MS },
  })
  cleanups.push(async () => {
    await parley.stop({ graceMs: 1000 })
  })
  return parley
}

// The same database, as a driver without notifications would offer it.
function withoutNotifications(db: ParleyDatabase): ParleyDatabase {
  const { notify: _notify, subscribe: _subscribe, ...rest } = db
  return { ...rest, close: () => db.close() }
}

async function latencies(db: ParleyDatabase): Promise<number[]> {
  const { rows } = await sql<{ ms: string }>`
    select extract(epoch from (processed_at - received_at)) * 1000 as ms
      from inbound_events
  `.execute(db.kysely)
  return rows.map((row) => Number(row.ms))
}

function percentiles(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! }
}

function report(name: string, latency: Latency): void {
  console.info(
    `webhook-to-conversation on Postgres, ${name}, ${WEBHOOKS} webhooks: ` +
      `p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms`,
  )
}

describe.skipIf(skip !== undefined)(
  `webhook-to-conversation latency on Postgres (poll ${POLL_MS} ms)`,
  () => {
    it('one instance wakes its own worker: milliseconds with or without notifications', async () => {
      const withNotify = await measure({ instances: 1, notifications: true })
      const without = await measure({ instances: 1, notifications: false })
      report('one instance, LISTEN/NOTIFY', withNotify)
      report('one instance, polling only', without)

      expect(withNotify.p50).toBeLessThan(POLL_MS / 4)
      expect(without.p50).toBeLessThan(POLL_MS / 4)
    }, 120_000)

    it('another instance threads within milliseconds with notifications, within a poll without', async () => {
      const withNotify = await measure({ instances: 2, notifications: true })
      const without = await measure({ instances: 2, notifications: false })
      report('two instances, LISTEN/NOTIFY', withNotify)
      report('two instances, polling only', without)

      expect(withNotify.p50).toBeLessThan(POLL_MS / 4)
      expect(without.p50).toBeGreaterThan(withNotify.p50)
      expect(without.p99).toBeLessThanOrEqual(2 * POLL_MS)
    }, 120_000)
  },
)
