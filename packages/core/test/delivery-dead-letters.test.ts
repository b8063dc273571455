/**
 * Dead letters in core: what failed for good is kept and listed per queue,
 * and a replay puts it back, due now, with a fresh attempt count, so that
 * it is delivered once the cause is gone.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  type MockProvider,
  NotFoundError,
  ValidationError,
} from '@parley/core'
import {
  createHarness,
  DIALECT_LABEL,
  type Harness,
  jobOf,
  poisonMessageBody,
  smsRequest,
  smsWebhook,
} from './support.js'

describe(`dead letters on ${DIALECT_LABEL}`, () => {
  let h: Harness
  let smsMock: MockProvider

  afterEach(async () => {
    await h.close()
  })

  async function setup(maxRetries = 1): Promise<void> {
    smsMock = createMockProvider({
      family: 'sms',
      faults: { errorPct: 100 },
      seed: 1,
    })
    h = await createHarness({
      providers: [smsMock],
      config: { maxRetries, backoffBaseMs: 100 },
    })
  }

  /** Ten rounds of the dispatch worker, a second apart. */
  async function dispatchRounds(): Promise<void> {
    const worker = h.dispatchWorker()
    for (let round = 0; round < 10; round += 1) {
      await worker.step()
      await worker.idle()
      h.clock.advance(1000)
    }
  }

  /** Sends an SMS and dispatches it until it has failed for good. */
  async function deadSms(): Promise<string> {
    const { id } = await h.parley.send(smsRequest())
    await dispatchRounds()
    expect((await h.parley.messages.get(id)).status).toBe('failed')
    return id
  }

  it('keeps a message that failed for good as a dispatch dead letter', async () => {
    await setup(1)
    const id = await deadSms()
    const job = await jobOf(h.db, id)

    const page = await h.parley.deadLetters.list('dispatch')

    expect(page).toMatchObject({ total: 1, page: 1, pageSize: 50 })
    expect(page.items).toEqual([
      {
        queue: 'dispatch',
        id: String(job.id),
        messageId: id,
        providerMessageId: null,
        attempts: 2,
        lastError: 'mock provider: 500 server error',
        failedAt: job.updated_at,
      },
    ])
    expect(await h.parley.deadLetters.list('inbound')).toMatchObject({
      items: [],
      total: 0,
    })
  })

  it('replays a dead letter with a fresh attempt count, due now, and delivers it once the provider recovers', async () => {
    await setup(1)
    const id = await deadSms()
    const jobId = String((await jobOf(h.db, id)).id)
    smsMock.configure({ errorPct: 0 })

    await h.parley.deadLetters.retry('dispatch', jobId)

    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'queued',
      attempts: 0,
      nextAttemptAt: h.clock.iso(),
    })
    const worker = h.dispatchWorker()
    await worker.step()
    await worker.idle()
    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'sent',
      attempts: 1,
      provider: 'mock-sms',
      providerMessageId: `mock-sms-${id}-1`,
    })
    expect((await h.parley.deadLetters.list('dispatch')).total).toBe(0)
  })

  it('dead-letters a replayed message again after another full round of attempts', async () => {
    await setup(2)
    const id = await deadSms()
    const jobId = String((await jobOf(h.db, id)).id)

    await h.parley.deadLetters.retry('dispatch', jobId)
    await dispatchRounds()

    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'failed',
      attempts: 3,
    })
    expect(h.metrics.snapshot()).toMatchObject({
      dispatch_dead_letter: 2,
      dispatch_attempts: 6,
    })
  })

  it('refuses to replay an unknown id, an id that is not dead, or a malformed id', async () => {
    await setup(1)
    const id = await deadSms()
    const jobId = String((await jobOf(h.db, id)).id)
    await h.parley.deadLetters.retry('dispatch', jobId)

    for (const missing of [jobId, '999', 'abc', '0', '-1']) {
      await expect(
        h.parley.deadLetters.retry('dispatch', missing),
        missing,
      ).rejects.toBeInstanceOf(NotFoundError)
    }
    await expect(
      h.parley.deadLetters.retry('inbound', jobId),
    ).rejects.toBeInstanceOf(NotFoundError)
  })

  it('refuses a queue that is neither dispatch nor inbound', async () => {
    await setup(1)

    await expect(
      h.parley.deadLetters.list('outbound' as 'dispatch'),
    ).rejects.toBeInstanceOf(ValidationError)
    await expect(
      h.parley.deadLetters.retry('outbound' as 'dispatch', '1'),
    ).rejects.toBeInstanceOf(ValidationError)
  })

  it('keeps an inbound event that failed for good, and threads it when replayed after the cause is gone', async () => {
    h = await createHarness({ config: { maxRetries: 0 } })
    const cure = await poisonMessageBody(h.db, 'poison')
    await h.parley.receive(
      smsWebhook({ messaging_provider_id: 'SM-poison', body: 'poison' }),
      { channel: 'sms' },
    )
    await h.inboundWorker().step()

    const page = await h.parley.deadLetters.list('inbound')
    expect(page.items).toEqual([
      expect.objectContaining({
        queue: 'inbound',
        messageId: null,
        providerMessageId: 'SM-poison',
        attempts: 1,
        lastError: 'injected message failure',
      }),
    ])
    await cure()

    await h.parley.deadLetters.retry('inbound', page.items[0]?.id ?? '')
    await h.inboundWorker().step()

    expect((await h.parley.deadLetters.list('inbound')).total).toBe(0)
    const conversations = await h.parley.conversations.list()
    expect(conversations.total).toBe(1)
  })
})
