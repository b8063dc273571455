import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { claimDue } from '../src/queue/queue-table.js'
import { type LogFields, silentLogger } from '../src/util/logger.js'
import {
  createHarness,
  DIALECT_LABEL,
  emailWebhook,
  type Harness,
  type HarnessOptions,
  plainRows,
  poisonConversations,
  poisonMessageBody,
  rowCounts,
  smsWebhook,
} from './support.js'

const A = '+18045551234'
const B = '+12025550100'

describe(`InboundWorker on ${DIALECT_LABEL}`, () => {
  let h: Harness

  async function setup(options: HarnessOptions = {}) {
    await h?.close()
    h = await createHarness(options)
    return h
  }

  async function events() {
    const rows = await h.db.kysely
      .selectFrom('inbound_events')
      .selectAll()
      .orderBy('id')
      .execute()
    return plainRows(rows)
  }

  async function receiveSms(
    id: string,
    overrides: Record<string, unknown> = {},
  ) {
    await h.parley.receive(
      smsWebhook({ messaging_provider_id: id, ...overrides }),
      {
        channel: 'sms',
      },
    )
  }

  beforeEach(async () => {
    h = await createHarness()
  })

  afterEach(async () => {
    await h.close()
  })

  describe('threading', () => {
    it('threads a batch in the order of its conversations, so that workers lock them alike', async () => {
      // Claimed oldest first: C<->A, then A<->B, then C<->A again.
      const C = '+13125550199'
      await receiveSms('SM-1', { from: C, to: A, body: 'c-a one' })
      await receiveSms('SM-2', { from: A, to: B, body: 'a-b' })
      await receiveSms('SM-3', { from: A, to: C, body: 'c-a two' })
      h.clock.advance(5)

      await h.inboundWorker().step()

      const rows = await h.db.kysely
        .selectFrom('messages')
        .select('body')
        .orderBy('id')
        .execute()
      // sms:+12025550100<->+18045551234 sorts before sms:+13125550199<->…
      expect(rows.map((row) => row.body)).toEqual(['a-b', 'c-a one', 'c-a two'])
    })

    it('threads a batch of events into their conversations', async () => {
      await receiveSms('SM-1', { from: A, to: B, body: 'one' })
      await receiveSms('SM-2', { from: '(202) 555-0100', to: A, body: 'two' })
      await h.parley.receive(emailWebhook({ xillio_id: 'X-1' }), {
        channel: 'email',
      })
      h.clock.advance(5)

      const more = await h.inboundWorker().step()

      expect(more).toBe(false)
      expect(await rowCounts(h.db)).toMatchObject({
        conversations: 2,
        messages: 3,
      })
      const stored = await events()
      for (const event of stored) {
        expect(event).toMatchObject({
          state: 'done',
          attempts: 1,
          claim_token: null,
          locked_until: null,
          last_error: null,
          processed_at: h.clock.iso(),
        })
        expect(event.message_id).not.toBeNull()
      }
      const [sms] = (await h.parley.conversations.list()).items.filter(
        (c) => c.channel === 'sms',
      )
      const { items } = await h.parley.conversations.messages(sms?.id ?? '')
      expect(items.map((m) => [m.body, m.direction, m.status, m.from])).toEqual(
        [
          ['one', 'inbound', 'received', A],
          ['two', 'inbound', 'received', '(202) 555-0100'],
        ],
      )
      const detail = await h.parley.messages.get(items[1]?.id ?? '')
      expect(detail).toMatchObject({ providerMessageId: 'SM-2', attempts: 0 })
      expect(h.metrics.snapshot()).toMatchObject({
        worker_claimed: 3,
        worker_processed: 3,
        worker_error: 0,
        conversations_created: 2,
        conversations_reused: 1,
      })
    })

    it('moves the latency gauges as it processes events', async () => {
      for (const id of ['SM-1', 'SM-2', 'SM-3']) await receiveSms(id)

      await h.inboundWorker().step()

      const snapshot = h.metrics.snapshot()
      expect(snapshot.worker_processed).toBe(3)
      expect(Number.isSafeInteger(snapshot.worker_latency_avg_us)).toBe(true)
      expect(snapshot.worker_latency_avg_us).toBeGreaterThanOrEqual(0)
      expect(snapshot.worker_latency_max_us).toBeGreaterThanOrEqual(
        snapshot.worker_latency_avg_us,
      )
      expect(snapshot.worker_latency_max_us).toBeGreaterThan(0)
    })

    it('threads an inbound message from an alphanumeric sender', async () => {
      await receiveSms('SM-1', { from: 'ACME', to: A })

      await h.inboundWorker().step()

      const [conversation] = (await h.parley.conversations.list()).items
      expect(conversation?.key).toBe(`sms:${A}<->ACME`)
    })

    it('threads inbound and outbound messages into one conversation', async () => {
      const sent = await h.parley.send({
        from: A,
        to: B,
        type: 'sms',
        body: 'out',
        attachments: null,
        timestamp: '2024-11-01T14:00:00Z',
      })
      await receiveSms('SM-1', {
        from: '202-555-0100',
        to: '804 555 1234',
        body: 'back',
        timestamp: '2024-11-01T15:00:00Z',
      })

      await h.inboundWorker().step()

      const [conversation] = (await h.parley.conversations.list()).items
      expect(conversation).toMatchObject({
        id: sent.conversationId,
        messageCount: 2,
        lastActivityAt: '2024-11-01T15:00:00.000Z',
      })
    })

    it('claims at most a batch per step and says when the batch was full', async () => {
      await setup({ config: { inboundBatchSize: 2 } })
      for (const id of ['SM-1', 'SM-2', 'SM-3']) await receiveSms(id)
      const worker = h.inboundWorker()

      expect(await worker.step()).toBe(true)
      expect(h.metrics.snapshot().worker_claimed).toBe(2)
      expect(await worker.step()).toBe(false)
      expect(await worker.step()).toBe(false)

      expect(h.metrics.snapshot()).toMatchObject({
        worker_claimed: 3,
        worker_processed: 3,
      })
    })

    it('claims and threads a batch in one write transaction', async () => {
      for (const id of ['SM-1', 'SM-2', 'SM-3', 'SM-4']) await receiveSms(id)
      const before = h.db.calls

      await h.inboundWorker().step()

      expect(h.db.calls - before).toBe(1)
      expect((await rowCounts(h.db)).messages).toBe(4)
    })

    it('claims an event again once the lease of a crashed worker expires', async () => {
      await setup({ config: { leaseMs: 20_000 } })
      await receiveSms('SM-1')
      await h.db.writeTransaction((trx) =>
        claimDue(trx, {
          table: 'inbound_events',
          dialect: h.db.dialect,
          now: h.clock.iso(),
          leaseUntil: h.clock.iso(20_000),
          limit: 10,
          token: 'inbound:crashed',
        }),
      )
      const worker = h.inboundWorker()

      h.clock.advance(19_999)
      expect(await worker.step()).toBe(false)
      expect((await rowCounts(h.db)).messages).toBe(0)

      h.clock.advance(1)
      await worker.step()

      expect((await rowCounts(h.db)).messages).toBe(1)
      expect((await events())[0]).toMatchObject({ state: 'done', attempts: 1 })
    })

    it('writes nothing for an event whose claim was lost before threading', async () => {
      await receiveSms('SM-1')
      const before = h.db.calls
      h.db.before = async (call) => {
        // The batch fails, so the event is claimed again on its own (the
        // second call); before the third threads it, another worker takes
        // the event over.
        if (call === before + 1) throw new Error('database unavailable')
        if (call === before + 3) {
          await h.db.kysely
            .updateTable('inbound_events')
            .set({ claim_token: 'inbound:other' })
            .execute()
        }
      }

      await h.inboundWorker().step()

      expect((await rowCounts(h.db)).messages).toBe(0)
      expect((await events())[0]).toMatchObject({
        state: 'running',
        claim_token: 'inbound:other',
        attempts: 0,
      })
      expect(h.metrics.snapshot()).toMatchObject({
        worker_claimed: 1,
        worker_processed: 0,
        worker_error: 0,
      })
    })
  })

  describe('failures', () => {
    it('retries a failing event with backoff and dead-letters it at last', async () => {
      await setup({
        random: () => 0.999,
        config: { maxRetries: 2, backoffBaseMs: 1000 },
      })
      await poisonMessageBody(h.db, 'poison')
      await receiveSms('SM-1', { body: 'fine' })
      await receiveSms('SM-2', { body: 'poison' })
      await receiveSms('SM-3', { body: 'also fine' })
      const worker = h.inboundWorker()

      await worker.step()

      expect((await rowCounts(h.db)).messages).toBe(2)
      let poisoned = (await events())[1]
      expect(poisoned).toMatchObject({
        state: 'pending',
        attempts: 1,
        run_at: h.clock.iso(999),
        last_error: 'injected message failure',
        message_id: null,
      })
      expect(h.metrics.snapshot()).toMatchObject({
        worker_claimed: 3,
        worker_processed: 2,
        worker_error: 1,
        worker_dead_letter: 0,
      })

      h.clock.advance(998)
      expect(await worker.step()).toBe(false)
      expect(h.metrics.snapshot().worker_claimed).toBe(3)

      h.clock.advance(1)
      await worker.step()
      poisoned = (await events())[1]
      expect(poisoned).toMatchObject({
        state: 'pending',
        attempts: 2,
        run_at: h.clock.iso(1998),
      })

      h.clock.advance(1998)
      await worker.step()
      poisoned = (await events())[1]
      expect(poisoned).toMatchObject({
        state: 'dead',
        attempts: 3,
        last_error: 'injected message failure',
        claim_token: null,
      })
      expect(h.metrics.snapshot()).toMatchObject({
        worker_claimed: 5,
        worker_processed: 2,
        worker_error: 2,
        worker_dead_letter: 1,
      })

      h.clock.advance(3_600_000)
      expect(await worker.step()).toBe(false)
      expect(h.metrics.snapshot().worker_claimed).toBe(5)
    })

    it('retries and dead-letters an event whose stored payload is corrupt', async () => {
      await setup({ random: () => 0, config: { maxRetries: 1 } })
      await receiveSms('SM-1', { body: 'before' })
      await receiveSms('SM-2', { body: 'corrupt' })
      await receiveSms('SM-3', { body: 'after' })
      await h.db.kysely
        .updateTable('inbound_events')
        .set({ payload: '{not json' })
        .where('provider_message_id', '=', 'SM-2')
        .execute()
      const worker = h.inboundWorker()

      await worker.step()

      expect((await rowCounts(h.db)).messages).toBe(2)
      expect((await events()).map((e) => [e.state, e.attempts])).toEqual([
        ['done', 1],
        ['pending', 1],
        ['done', 1],
      ])
      expect(h.metrics.snapshot()).toMatchObject({
        worker_processed: 2,
        worker_error: 1,
      })

      await worker.step()

      expect((await events())[1]).toMatchObject({ state: 'dead', attempts: 2 })
      expect((await events())[1]?.last_error).toMatch(/JSON/)
      expect(h.metrics.snapshot()).toMatchObject({
        worker_error: 1,
        worker_dead_letter: 1,
      })
    })

    it('counts a failed conversation upsert and retries the event', async () => {
      await setup({ random: () => 0, config: { maxRetries: 1 } })
      await receiveSms('SM-1')
      await poisonConversations(h.db)
      const worker = h.inboundWorker()

      await worker.step()

      expect((await events())[0]).toMatchObject({
        state: 'pending',
        attempts: 1,
        last_error: 'conversation upsert failed',
      })
      expect(h.metrics.snapshot()).toMatchObject({
        conversations_failures: 1,
        worker_error: 1,
      })
    })

    it.each([
      ['dead-lettering', 0],
      ['rescheduling', 3],
    ])(
      'counts nothing when its claim was lost before %s a failure',
      async (_, maxRetries) => {
        await setup({ config: { maxRetries } })
        await poisonMessageBody(h.db, 'poison')
        await receiveSms('SM-1', { body: 'poison' })
        const before = h.db.calls
        h.db.before = async (call) => {
          // Claim, batch, event alone; then, before the failure is
          // recorded, another worker takes the event over.
          if (call === before + 4) {
            await h.db.kysely
              .updateTable('inbound_events')
              .set({ claim_token: 'inbound:other' })
              .execute()
          }
        }

        await h.inboundWorker().step()

        expect((await events())[0]).toMatchObject({
          state: 'running',
          claim_token: 'inbound:other',
          attempts: 0,
        })
        expect(h.metrics.snapshot()).toMatchObject({
          worker_error: 0,
          worker_dead_letter: 0,
        })
      },
    )

    it('retries every event of a batch whose threading keeps failing', async () => {
      await setup({ random: () => 0, config: { maxRetries: 0 } })
      await receiveSms('SM-1')
      await receiveSms('SM-2', { from: '+12025550199' })
      const before = h.db.calls
      // Transactions in order: the batch (claim and threading), the claim
      // alone, event 1 alone, its dead letter, event 2 alone, its dead
      // letter. Fail every threading one.
      const threading = new Set([before + 1, before + 3, before + 5])
      h.db.before = (call) => {
        if (threading.has(call)) throw new Error('database unavailable')
      }
      const worker = h.inboundWorker()

      await worker.step()
      h.db.before = undefined

      expect((await events()).map((e) => [e.state, e.last_error])).toEqual([
        ['dead', 'database unavailable'],
        ['dead', 'database unavailable'],
      ])
      expect(h.metrics.snapshot()).toMatchObject({
        worker_claimed: 2,
        worker_processed: 0,
        worker_error: 0,
        worker_dead_letter: 2,
      })
    })

    it('logs a failed batch with the driver error that caused it', async () => {
      await receiveSms('SM-1')
      const warnings: [string, LogFields | undefined][] = []
      const logger = {
        ...silentLogger,
        warn: (event: string, fields?: LogFields) =>
          warnings.push([event, fields]),
      }
      const batch = h.db.calls + 1
      h.db.before = (call) => {
        if (call === batch) {
          const cause = new Error('deadlock detected')
          throw new Error('conversation upsert failed', { cause })
        }
      }

      await h.inboundWorker(logger).step()
      h.db.before = undefined

      expect(warnings).toContainEqual([
        'inbound.batch_failed',
        {
          size: 1,
          error: 'conversation upsert failed',
          cause: 'deadlock detected',
        },
      ])
      expect((await events()).map((e) => e.state)).toEqual(['done'])
    })
  })

  describe('stop', () => {
    it('stops its loop and holds no claims afterwards', async () => {
      await receiveSms('SM-1')
      const worker = h.inboundWorker()
      worker.start()
      worker.wake()

      await worker.stop()

      const held = (await events()).filter((e) => e.state === 'running')
      expect(held).toEqual([])
    })
  })
})
