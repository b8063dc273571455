import { createMockProvider, createParley, silentLogger } from '@parley/core'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config.js'
import { RetentionWorker } from '../src/queue/retention-worker.js'
import { PRUNED_TABLES, pruneStatements } from '../src/store/retention.js'
import { CompiledQuery } from 'kysely'
import {
  BULK_LIMITS,
  createHarness,
  DIALECT,
  DIALECT_LABEL,
  type Harness,
  ManualClock,
  rowCounts,
  smsRequest,
  smsWebhook,
  START,
  testDb,
} from './support.js'

const DAY = 86_400_000
// With the default window of 7 days, pruning at START + 8 days removes
// what stopped mattering before START + 1 day.
const PRUNE_AT = START + 8 * DAY
const OLD = new Date(START).toISOString()
const RECENT = new Date(START + 2 * DAY).toISOString()

async function withHarness(
  run: (h: Harness) => Promise<void>,
  config = {},
): Promise<void> {
  const h = await createHarness({ config })
  try {
    await run(h)
  } finally {
    await h.close()
  }
}

function retentionWorker(h: Harness, batchSize = 500): RetentionWorker {
  const config = resolveConfig({ retentionBatchSize: batchSize })
  return new RetentionWorker({
    db: h.db,
    config,
    clock: h.clock,
    logger: silentLogger,
  })
}

// Sends `count` messages and sets their jobs' state and last change.
async function jobsIn(
  h: Harness,
  state: 'done' | 'dead' | 'pending',
  updatedAt: string,
  count = 1,
): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i += 1) {
    const { id } = await h.parley.send(smsRequest({ body: `${state} ${i}` }))
    await h.db.kysely
      .updateTable('dispatch_jobs')
      .set({ state, updated_at: updatedAt })
      .where('message_id', '=', Number(id))
      .execute()
    ids.push(id)
  }
  return ids
}

async function eventIn(
  h: Harness,
  providerId: string,
  state: 'done' | 'dead' | 'pending',
  processedAt: string | null,
): Promise<void> {
  await h.parley.receive(smsWebhook({ messaging_provider_id: providerId }), {
    channel: 'sms',
  })
  await h.db.kysely
    .updateTable('inbound_events')
    .set({ state, processed_at: processedAt, updated_at: processedAt ?? OLD })
    .where('provider_message_id', '=', providerId)
    .execute()
}

async function keyExpiringAt(
  h: Harness,
  key: string,
  expiresAt: string,
): Promise<void> {
  await h.db.kysely
    .insertInto('idempotency_keys')
    .values({
      scope: 'send:sms',
      key,
      fingerprint: 'f',
      state: 'done',
      status_code: null,
      response_body: '{}',
      created_at: OLD,
      expires_at: expiresAt,
    })
    .execute()
}

async function bucketUsedAt(h: Harness, key: string, at: number) {
  await h.db.kysely
    .insertInto('rate_limit_buckets')
    .values({ key, level: 5, updated_at_ms: at })
    .execute()
}

async function reportReceivedAt(h: Harness, providerId: string, at: string) {
  await h.db.kysely
    .insertInto('pending_status_updates')
    .values({
      family: 'sms',
      provider_message_id: providerId,
      status: 'delivered',
      error: null,
      received_at: at,
    })
    .execute()
}

async function remaining(h: Harness) {
  const db = h.db.kysely
  const jobs = await db
    .selectFrom('dispatch_jobs')
    .select(['message_id', 'state'])
    .execute()
  const events = await db
    .selectFrom('inbound_events')
    .select('provider_message_id')
    .execute()
  const keys = await db.selectFrom('idempotency_keys').select('key').execute()
  const buckets = await db
    .selectFrom('rate_limit_buckets')
    .select('key')
    .execute()
  const reports = await db
    .selectFrom('pending_status_updates')
    .select('provider_message_id')
    .execute()
  return {
    jobs: jobs.map((row) => String(row.message_id)).sort(),
    events: events.map((row) => row.provider_message_id).sort(),
    keys: keys.map((row) => row.key).sort(),
    buckets: buckets.map((row) => row.key).sort(),
    reports: reports.map((row) => row.provider_message_id).sort(),
  }
}

describe(`retention on ${DIALECT_LABEL}`, () => {
  it('prunes what stopped mattering before the window and keeps everything else', () =>
    withHarness(async (h) => {
      await jobsIn(h, 'done', OLD)
      const [recentDone] = await jobsIn(h, 'done', RECENT)
      const [oldDead] = await jobsIn(h, 'dead', OLD)
      const [oldPending] = await jobsIn(h, 'pending', OLD)
      await eventIn(h, 'SM-old-done', 'done', OLD)
      await eventIn(h, 'SM-recent-done', 'done', RECENT)
      await eventIn(h, 'SM-old-dead', 'dead', null)
      await eventIn(h, 'SM-old-pending', 'pending', null)
      await keyExpiringAt(h, 'expired-long-ago', OLD)
      await keyExpiringAt(h, 'expired-lately', RECENT)
      await keyExpiringAt(h, 'live', new Date(PRUNE_AT + DAY).toISOString())
      await bucketUsedAt(h, 'api:idle', START)
      await bucketUsedAt(h, 'api:recent', START + 2 * DAY)
      await reportReceivedAt(h, 'SM-report-old', OLD)
      await reportReceivedAt(h, 'SM-report-recent', RECENT)
      const before = await rowCounts(h.db)

      h.clock.t = PRUNE_AT
      const more = await retentionWorker(h).step()

      expect(more).toBe(false)
      expect(await remaining(h)).toEqual({
        jobs: [recentDone, oldDead, oldPending].sort(),
        events: ['SM-old-dead', 'SM-old-pending', 'SM-recent-done'],
        keys: ['expired-lately', 'live'],
        buckets: ['api:recent'],
        reports: ['SM-report-recent'],
      })
      // Messages and conversations are kept, whatever became of the work.
      const after = await rowCounts(h.db)
      expect(after.messages).toBe(before.messages)
      expect(after.conversations).toBe(before.conversations)
    }))

  it('keeps rows one millisecond younger than the window', () =>
    withHarness(async (h) => {
      const edge = new Date(START).toISOString()
      await jobsIn(h, 'done', edge)
      await bucketUsedAt(h, 'api:edge', START)

      h.clock.t = START + 7 * DAY
      await retentionWorker(h).step()
      expect((await remaining(h)).jobs).toHaveLength(1)
      expect((await remaining(h)).buckets).toEqual(['api:edge'])

      h.clock.t = START + 7 * DAY + 1
      await retentionWorker(h).step()
      expect((await remaining(h)).jobs).toHaveLength(0)
      expect((await remaining(h)).buckets).toEqual([])
    }))

  it('deletes in bounded batches and says when a batch came back full', () =>
    withHarness(async (h) => {
      await jobsIn(h, 'done', OLD, 5)
      h.clock.t = PRUNE_AT
      const worker = retentionWorker(h, 2)
      const left = async () => (await remaining(h)).jobs.length

      expect(await worker.step()).toBe(true)
      expect(await left()).toBe(3)
      expect(await worker.step()).toBe(true)
      expect(await left()).toBe(1)
      expect(await worker.step()).toBe(false)
      expect(await left()).toBe(0)
    }))

  it('ends the webhook dedupe window with the event: a redelivery after it is new', () =>
    withHarness(async (h) => {
      const payload = smsWebhook({ messaging_provider_id: 'SM-late' })
      await h.parley.receive(payload, { channel: 'sms' })
      await h.inboundWorker().step()
      const within = await h.parley.receive(payload, { channel: 'sms' })
      expect(within.duplicate).toBe(true)

      h.clock.advance(7 * DAY + 1)
      await retentionWorker(h).step()
      const after = await h.parley.receive(payload, { channel: 'sms' })

      expect(after.duplicate).toBe(false)
    }))

  it('lets an expired idempotency key go only once the window passed its expiry', () =>
    withHarness(
      async (h) => {
        const first = await h.parley.send(smsRequest(), {
          idempotencyKey: 'k-retained',
        })
        expect(first.replayed).toBe(false)
        const counts = async () =>
          (await remaining(h)).keys.filter((key) => key === 'k-retained')

        h.clock.advance(60_000 + 7 * DAY)
        await retentionWorker(h).step()
        expect(await counts()).toEqual(['k-retained'])

        h.clock.advance(1)
        await retentionWorker(h).step()
        expect(await counts()).toEqual([])
      },
      { idempotencyTtlMs: 60_000 },
    ))
})

// Postgres plans by table statistics: on the few rows of a test it rightly
// prefers a sequential scan, so only SQLite's plan, which follows the
// indexes whatever the size, shows whether one exists for each delete.
describe.skipIf(DIALECT !== 'sqlite')('retention on SQLite', () => {
  it('finds the rows of every delete through an index on its cutoff, never a table scan', () =>
    withHarness(async (h) => {
      const statements = pruneStatements(h.db.kysely, {
        now: PRUNE_AT,
        retentionMs: 7 * DAY,
        batchSize: 500,
      })
      for (const table of PRUNED_TABLES) {
        const { sql, parameters } = statements[table].compile()
        const plan = await h.db.kysely.executeQuery<{ detail: string }>(
          CompiledQuery.raw(`explain query plan ${sql}`, [...parameters]),
        )
        const steps = plan.rows.map((row) => row.detail)
        const onTable = steps.filter((step) =>
          new RegExp(`\\b${table}\\b`).test(step),
        )
        for (const step of onTable) {
          expect(step, steps.join(' | ')).toMatch(/^SEARCH .* USING /)
        }
        // The cutoff itself is a range of the index, not a filter after it.
        expect(
          onTable.some((step) => /INDEX \w+ \(.*<\?\)$/.test(step)),
          steps.join(' | '),
        ).toBe(true)
      }
    }))
})

describe(`the retention worker of a running Parley on ${DIALECT_LABEL}`, () => {
  it('prunes on start and again at each interval, by its injected clock', async () => {
    const db = await testDb()
    const clock = new ManualClock()
    const parley = await createParley({
      db,
      providers: [createMockProvider({ family: 'sms' })],
      clock,
      config: { ...BULK_LIMITS, retentionIntervalMs: 10 },
    })
    try {
      await parley.send(smsRequest())
      await parley.start()
      const jobs = () =>
        db.kysely.selectFrom('dispatch_jobs').select('state').execute()
      await waitFor(async () => (await jobs())[0]?.state === 'done')

      clock.advance(7 * DAY + 1)
      await waitFor(async () => (await jobs()).length === 0)

      expect((await rowCounts(db)).messages).toBe(1)
    } finally {
      await parley.stop()
      await db.close()
    }
  })
})

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in 5 s')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
