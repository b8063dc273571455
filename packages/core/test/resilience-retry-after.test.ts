/**
 * A 429 with `Retry-After`: the job is not retried before the clock has
 * moved that long, and the provider is paused for every other job until
 * then. Backoff is kept small (base 100 ms, every random draw 0.5) so that
 * the wait the provider asked for is what decides.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { ProviderOutcome } from '@parley/core'
import type { DispatchWorker } from '../src/queue/dispatch-worker.js'
import {
  createHarness,
  DIALECT_LABEL,
  type Harness,
  type HarnessOptions,
  scriptedProvider,
  type ScriptedProvider,
  smsRequest,
  START,
} from './support.js'

const slowDown = (retryAfterMs: number): ProviderOutcome => ({
  kind: 'rate_limited',
  retryAfterMs,
  error: 'mock provider: 429 too many requests',
})

describe(`a 429 with Retry-After on ${DIALECT_LABEL}`, () => {
  let h: Harness
  let worker: DispatchWorker
  /** When (ms after the start) the provider was called, per message. */
  let calledAt: Array<{ id: string; at: number }>

  afterEach(async () => {
    await h.close()
  })

  /** A provider that answers each message's first call with `first`. */
  async function setup(
    first: ProviderOutcome,
    config: HarnessOptions['config'] = {},
  ): Promise<ScriptedProvider> {
    calledAt = []
    const provider = scriptedProvider('sms', ({ message, context }) => {
      calledAt.push({ id: message.id, at: h.clock.now() - START })
      return context.attempt === 1
        ? first
        : { kind: 'sent', providerMessageId: `SM-${message.id}` }
    })
    h = await createHarness({
      providers: [provider],
      config: { backoffBaseMs: 100, ...config },
    })
    worker = h.dispatchWorker()
    return provider
  }

  async function roundAt(ms: number): Promise<void> {
    h.clock.advance(START + ms - h.clock.now())
    await worker.step()
    await worker.idle()
  }

  async function send(): Promise<string> {
    return (await h.parley.send(smsRequest())).id
  }

  it('is not retried before the clock has moved two seconds', async () => {
    await setup(slowDown(2000))
    const id = await send()

    await roundAt(0)
    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'queued',
      attempts: 1,
      nextAttemptAt: new Date(START + 2000).toISOString(),
      lastError: 'mock provider: 429 too many requests',
    })
    await roundAt(1000)
    await roundAt(1900)
    await roundAt(1999)
    expect(calledAt).toEqual([{ id, at: 0 }])

    await roundAt(2000)

    expect(calledAt).toEqual([
      { id, at: 0 },
      { id, at: 2000 },
    ])
    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'sent',
      attempts: 2,
    })
    expect(h.metrics.snapshot()).toMatchObject({
      dispatch_attempts: 2,
      dispatch_rate_limited: 1,
      dispatch_success: 1,
    })
  })

  it('pauses the provider for other jobs until then, deferring them uncounted', async () => {
    await setup(slowDown(2000))
    const limited = await send()
    await roundAt(0)

    const other = await send()
    await roundAt(100)
    await roundAt(1900)

    expect(calledAt.map((c) => c.id)).toEqual([limited])
    expect(await h.parley.messages.get(other)).toMatchObject({
      status: 'queued',
      attempts: 0,
      // The end of the pause plus 500 ms of jitter.
      nextAttemptAt: new Date(START + 2500).toISOString(),
    })
    // A Retry-After pause is not a breaker: nothing short-circuited.
    expect(h.metrics.snapshot().dispatch_short_circuited).toBe(0)

    await roundAt(2000)
    await roundAt(2500)

    expect(calledAt).toEqual([
      { id: limited, at: 0 },
      { id: limited, at: 2000 },
      { id: other, at: 2500 },
    ])
  })

  it('pauses the provider no longer than retryAfterMaxMs, however long it asks', async () => {
    await setup(slowDown(3_600_000), { retryAfterMaxMs: 5000 })
    const limited = await send()
    await roundAt(0)
    const other = await send()

    await roundAt(5000)

    // Both were called at the cap, neither waited out the hour asked for.
    // Jobs claimed together run concurrently (on Postgres over pooled
    // connections of their own), so calls at one instant may come in
    // either order.
    const byTimeThenId = (a: { id: string; at: number }, b: typeof a) =>
      a.at - b.at || Number(a.id) - Number(b.id)
    expect([...calledAt].sort(byTimeThenId)).toEqual([
      { id: limited, at: 0 },
      { id: limited, at: 5000 },
      { id: other, at: 5000 },
    ])
    expect(await h.parley.messages.get(limited)).toMatchObject({
      status: 'sent',
      attempts: 2,
    })
  })

  it('does not count toward the breaker: many 429s in a row leave it closed', async () => {
    calledAt = []
    const provider = scriptedProvider('sms', ({ message }) => {
      calledAt.push({ id: message.id, at: h.clock.now() - START })
      return slowDown(0)
    })
    h = await createHarness({
      providers: [provider],
      config: { breakerThreshold: 2, maxRetries: 4, backoffBaseMs: 100 },
    })
    worker = h.dispatchWorker()
    const ids = [await send(), await send(), await send()]

    for (let ms = 0; ms <= 10_000; ms += 100) await roundAt(ms)

    expect(provider.calls).toHaveLength(15)
    expect(h.metrics.snapshot()).toMatchObject({
      dispatch_rate_limited: 15,
      provider_sms_mms_breaker_transitions: 0,
      dispatch_short_circuited: 0,
      dispatch_dead_letter: 3,
    })
    for (const id of ids) {
      expect(await h.parley.messages.get(id)).toMatchObject({
        status: 'failed',
        attempts: 5,
      })
    }
  })
})
