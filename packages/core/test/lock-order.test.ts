/**
 * Two instances on one database lock shared rows in one order, so that
 * neither waits for the other in a cycle (a deadlock costs a second's wait
 * on Postgres, then a failed batch and its retry). The rows: inbound
 * events (a redelivered webhook's insert waits on an event a worker holds),
 * conversations, and idempotency keys. On SQLite, which runs one write
 * transaction at a time, the same run checks the data alone.
 */
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  isParleyError,
  type Parley,
} from '@parley/core'
import {
  BULK_LIMITS,
  createHarness,
  DIALECT_LABEL,
  type Harness,
  smsRequest,
  smsWebhook,
  watchingDeadlocks,
} from './support.js'

const CONVERSATIONS = 8
const ROUNDS = 25

const customer = (c: number) => `+1202555${String(100 + c).padStart(4, '0')}`
const OWN = '+18045551234'

describe(`lock order of two instances on ${DIALECT_LABEL}`, () => {
  let h: Harness
  const instances: Parley[] = []

  afterEach(async () => {
    for (const instance of instances.splice(0)) await instance.stop()
    await h.close()
  })

  // Instance `worker` threads webhooks as they come; instance `front`
  // accepts, in one group commit each round, every webhook of the round
  // again (as a provider that redelivers would) and a send to each of the
  // same conversations, some under an Idempotency-Key that `worker` is
  // given too. Before the lock ranks, the front's commit locked a
  // conversation and then waited for an event the worker had claimed,
  // while the worker waited for that conversation.
  it('threads redelivered webhooks and sends to the same conversations without a deadlock', async () => {
    h = await createHarness()
    const watched = watchingDeadlocks(h.db)
    const instance = async () => {
      const parley = await createParley({
        db: watched.db,
        providers: [
          createMockProvider({ family: 'sms', seed: 1 }),
          createMockProvider({ family: 'email', seed: 1 }),
        ],
        config: { ...BULK_LIMITS, pollIntervalMs: 10 },
        migrate: false,
      })
      instances.push(parley)
      return parley
    }
    const worker = await instance()
    const front = await instance()
    await worker.start()

    for (let round = 0; round < ROUNDS; round += 1) {
      const webhooks = Array.from({ length: CONVERSATIONS }, (_, c) =>
        smsWebhook({
          from: customer(c),
          to: OWN,
          body: `reply ${round}.${c}`,
          messaging_provider_id: `SM-${round}-${c}`,
        }),
      )
      const channel = { channel: 'sms' as const }
      await Promise.all(webhooks.map((w) => worker.receive(w, channel)))
      const key = (c: number) => ({ idempotencyKey: `k-${round}-${c}` })
      const send = (c: number) =>
        smsRequest({ from: OWN, to: customer(c), body: `send ${round}.${c}` })
      await Promise.all([
        ...webhooks.map((w) => front.receive(w, channel)),
        ...webhooks.map((_, c) =>
          c % 2 === 0 ? front.send(send(c)) : keyed(front, send(c), key(c)),
        ),
        ...webhooks.map((_, c) =>
          c % 2 === 0 ? undefined : keyed(worker, send(c), key(c)),
        ),
      ])
    }
    await expect
      .poll(() => threadedCount(), { timeout: 20_000, interval: 50 })
      .toBe(ROUNDS * CONVERSATIONS)

    expect(watched.deadlocks()).toBe(0)
    // Every webhook once, every send once (a key's two requests one send).
    const counts = await sql<{ direction: string; n: number | string }>`
      select direction, count(*) as n from messages group by direction
      order by direction`.execute(h.db.kysely)
    expect(counts.rows.map((r) => [r.direction, Number(r.n)])).toEqual([
      ['inbound', ROUNDS * CONVERSATIONS],
      ['outbound', ROUNDS * CONVERSATIONS],
    ])
    const conversations = await h.db.kysely
      .selectFrom('conversations')
      .select(['message_count'])
      .execute()
    expect(conversations.map((c) => Number(c.message_count))).toEqual(
      Array.from({ length: CONVERSATIONS }, () => 2 * ROUNDS),
    )
  }, 60_000)

  // A keyed send; the other instance's request with the same key may be
  // told that the first is still in progress, which is its answer.
  async function keyed(
    parley: Parley,
    request: Record<string, unknown>,
    options: { idempotencyKey: string },
  ): Promise<void> {
    await parley.send(request, options).catch((error: unknown) => {
      if (!isParleyError(error, 'idempotency_in_progress')) throw error
    })
  }

  async function threadedCount(): Promise<number> {
    const row = await h.db.kysely
      .selectFrom('inbound_events')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('state', '=', 'done')
      .executeTakeFirstOrThrow()
    return Number(row.n)
  }
})
