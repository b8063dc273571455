import { describe, expect, it } from 'vitest'
import {
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  ValidationError,
} from '../src/errors.js'
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  fingerprintOf,
} from '../src/store/idempotency.js'
import {
  createHarness,
  DIALECT_LABEL,
  type Harness,
  poisonMessageBody,
  rowCounts,
  smsRequest,
  smsWebhook,
} from './support.js'

async function withHarness(run: (h: Harness) => Promise<void>) {
  const h = await createHarness({
    config: { idempotencyTtlMs: 60 * 60 * 1000 },
  })
  try {
    await run(h)
  } finally {
    await h.close()
  }
}

describe(`idempotent sends on ${DIALECT_LABEL}`, () => {
  it('replays the first result for a repeat with the same body and stores nothing new', () =>
    withHarness(async (h) => {
      const first = await h.parley.send(smsRequest(), { idempotencyKey: 'k1' })
      const again = await h.parley.send(smsRequest(), { idempotencyKey: 'k1' })

      expect(first.replayed).toBe(false)
      expect(again).toMatchObject({
        id: first.id,
        conversationId: first.conversationId,
        replayed: true,
      })
      expect((await rowCounts(h.db)).messages).toBe(1)
      expect(h.parley.metrics.snapshot().conversations_created).toBe(1)
    }))

  it('treats key order and white space as the same body', () =>
    withHarness(async (h) => {
      const body = smsRequest()
      const reordered = Object.fromEntries(Object.entries(body).reverse())
      await h.parley.send(body, { idempotencyKey: 'k' })

      const again = await h.parley.send(reordered, { idempotencyKey: 'k' })

      expect(again.replayed).toBe(true)
      expect(fingerprintOf(body)).toBe(fingerprintOf(reordered))
    }))

  it('refuses the key with another body, storing nothing', () =>
    withHarness(async (h) => {
      await h.parley.send(smsRequest(), { idempotencyKey: 'k' })

      await expect(
        h.parley.send(smsRequest({ body: 'changed' }), { idempotencyKey: 'k' }),
      ).rejects.toBeInstanceOf(IdempotencyKeyReusedError)
      expect((await rowCounts(h.db)).messages).toBe(1)
    }))

  it('answers in progress while the first holder runs, and reused for another body even then', () =>
    withHarness(async (h) => {
      const body = smsRequest()
      const claim = await claimIdempotencyKey(h.db.kysely, {
        scope: 'send:sms',
        key: 'busy',
        fingerprint: fingerprintOf(body),
        now: h.clock.now(),
        ttlMs: 60_000,
        staleMs: 30_000,
      })
      expect(claim.kind).toBe('fresh')

      await expect(
        h.parley.send(body, { idempotencyKey: 'busy' }),
      ).rejects.toBeInstanceOf(IdempotencyInProgressError)
      await expect(
        h.parley.send(smsRequest({ body: 'x' }), { idempotencyKey: 'busy' }),
      ).rejects.toBeInstanceOf(IdempotencyKeyReusedError)
      expect((await rowCounts(h.db)).messages).toBe(0)
    }))

  it('lets a repeat take over a marker older than 30 seconds (its holder crashed)', () =>
    withHarness(async (h) => {
      const body = smsRequest()
      await claimIdempotencyKey(h.db.kysely, {
        scope: 'send:sms',
        key: 'crashed',
        fingerprint: fingerprintOf(body),
        now: h.clock.now(),
        ttlMs: 60 * 60 * 1000,
        staleMs: 30_000,
      })
      h.clock.advance(29_999)
      await expect(
        h.parley.send(body, { idempotencyKey: 'crashed' }),
      ).rejects.toBeInstanceOf(IdempotencyInProgressError)

      h.clock.advance(2)
      const taken = await h.parley.send(body, { idempotencyKey: 'crashed' })

      expect(taken.replayed).toBe(false)
      expect((await rowCounts(h.db)).messages).toBe(1)
    }))

  it('rolls back the writes of a holder whose key was taken over while it stalled', () =>
    withHarness(async (h) => {
      const body = smsRequest()
      const stalled = await claimIdempotencyKey(h.db.kysely, {
        scope: 'send:sms',
        key: 'slow',
        fingerprint: fingerprintOf(body),
        now: h.clock.now(),
        ttlMs: 60 * 60 * 1000,
        staleMs: 30_000,
      })
      h.clock.advance(31_000)
      await h.parley.send(body, { idempotencyKey: 'slow' })
      if (stalled.kind !== 'fresh') throw new Error('expected a fresh claim')

      const late = h.db.writeTransaction(async (trx) => {
        await trx
          .updateTable('conversations')
          .set({ message_count: 999 })
          .execute()
        await completeIdempotencyKey(trx, stalled.token, '{}')
      })

      await expect(late).rejects.toBeInstanceOf(IdempotencyInProgressError)
      const [conversation] = (await h.parley.conversations.list()).items
      expect(conversation?.messageCount).toBe(1)
    }))

  it('forgets a key after its time to live', () =>
    withHarness(async (h) => {
      await h.parley.send(smsRequest(), { idempotencyKey: 'old' })
      h.clock.advance(60 * 60 * 1000)

      const later = await h.parley.send(smsRequest({ body: 'new body' }), {
        idempotencyKey: 'old',
      })

      expect(later.replayed).toBe(false)
      expect((await rowCounts(h.db)).messages).toBe(2)
    }))

  it('releases the key when the write fails, so a repeat runs afresh', () =>
    withHarness(async (h) => {
      await poisonMessageBody(h.db, 'poison')
      const body = smsRequest({ body: 'poison' })
      await expect(
        h.parley.send(body, { idempotencyKey: 'retry-me' }),
      ).rejects.toThrow()

      await expect(
        h.parley.send(body, { idempotencyKey: 'retry-me' }),
      ).rejects.not.toBeInstanceOf(IdempotencyInProgressError)
    }))

  it('scopes keys: the same key on another scope or family is independent', () =>
    withHarness(async (h) => {
      await h.parley.send(smsRequest(), { idempotencyKey: 'shared' })

      const other = await h.parley.send(smsRequest({ body: 'other' }), {
        idempotencyKey: 'shared',
        idempotencyScope: 'tenant-b',
      })
      const inbound = await h.parley.receive(smsWebhook(), {
        channel: 'sms',
        idempotencyKey: 'shared',
      })

      expect(other.replayed).toBe(false)
      expect(inbound.replayed).toBe(false)
    }))

  it.each(['', 'a'.repeat(256), 'has space', 'tab\t', 'é'])(
    'rejects the key %j with a validation error',
    (key) =>
      withHarness(async (h) => {
        await expect(
          h.parley.send(smsRequest(), { idempotencyKey: key }),
        ).rejects.toBeInstanceOf(ValidationError)
        expect((await rowCounts(h.db)).messages).toBe(0)
      }),
  )

  it('replays a webhook result too, without queueing the event twice', () =>
    withHarness(async (h) => {
      const first = await h.parley.receive(smsWebhook(), {
        channel: 'sms',
        idempotencyKey: 'w',
      })
      const again = await h.parley.receive(smsWebhook(), {
        channel: 'sms',
        idempotencyKey: 'w',
      })

      expect(first).toEqual({ duplicate: false, replayed: false })
      expect(again).toEqual({ duplicate: false, replayed: true })
      expect((await rowCounts(h.db)).inbound_events).toBe(1)
    }))
})
