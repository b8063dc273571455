/**
 * Failover between the providers of one family: with two SMS providers and
 * the first one down, messages go out through the second once the first
 * one's breaker opens, and each message records the provider that sent it.
 * Every random draw is 0.5: backoff is half its ceiling, jitter 500 ms.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMockProvider, type MockProvider } from '@parley/core'
import type { DispatchWorker } from '../src/queue/dispatch-worker.js'
import {
  countingProvider,
  type CountingProvider,
  createHarness,
  DIALECT_LABEL,
  type Harness,
  smsRequest,
  START,
} from './support.js'

const OPEN_MS = 10_000

describe(`failover to the second SMS provider on ${DIALECT_LABEL}`, () => {
  let h: Harness
  let worker: DispatchWorker
  let firstMock: MockProvider
  let secondMock: MockProvider
  let first: CountingProvider
  let second: CountingProvider

  beforeEach(async () => {
    firstMock = createMockProvider({
      family: 'sms',
      faults: { errorPct: 100 },
      seed: 1,
    })
    secondMock = createMockProvider({
      family: 'sms',
      name: 'mock-sms-b',
      seed: 1,
    })
    first = countingProvider(firstMock)
    second = countingProvider(secondMock)
    h = await createHarness({
      providers: [first, second, createMockProvider({ family: 'email' })],
      config: { breakerThreshold: 2, breakerOpenMs: OPEN_MS },
    })
    worker = h.dispatchWorker()
    return () => h.close()
  })

  async function round(): Promise<void> {
    await worker.step()
    await worker.idle()
  }

  async function send(count: number): Promise<string[]> {
    const ids: string[] = []
    for (let i = 0; i < count; i += 1) {
      ids.push((await h.parley.send(smsRequest({ body: `m${i}` }))).id)
    }
    return ids
  }

  /** Two messages fail on the first provider and open its breaker. */
  async function breakFirst(): Promise<string[]> {
    const ids = await send(2)
    await round()
    expect(first.calls).toHaveLength(2)
    return ids
  }

  it('tries the first provider while its breaker is closed', async () => {
    const ids = await breakFirst()

    expect(second.calls).toHaveLength(0)
    for (const id of ids) {
      expect(await h.parley.messages.get(id)).toMatchObject({
        status: 'queued',
        attempts: 1,
        lastError: 'mock provider: 500 server error',
        provider: null,
      })
    }
    expect(h.metrics.snapshot().provider_sms_mms_breaker_transitions).toBe(1)
  })

  it('sends retries through the second provider once the first one’s breaker is open, and records it', async () => {
    const ids = await breakFirst()

    h.clock.advance(500)
    await round()

    expect(first.calls).toHaveLength(2)
    // Jobs claimed together run concurrently: on Postgres each loads its
    // message over a pooled connection of its own, so either may call first.
    expect(second.calls.map((c) => c.messageId).sort()).toEqual(ids.sort())
    for (const id of ids) {
      expect(await h.parley.messages.get(id)).toMatchObject({
        status: 'sent',
        attempts: 2,
        provider: 'mock-sms-b',
        providerMessageId: `mock-sms-b-${id}-2`,
        lastError: null,
      })
    }
  })

  it('sends new messages straight through the second provider, without deferring them', async () => {
    await breakFirst()
    const [fresh] = await send(1)

    await round()

    expect(await h.parley.messages.get(fresh ?? '')).toMatchObject({
      status: 'sent',
      attempts: 1,
      provider: 'mock-sms-b',
      providerMessageId: `mock-sms-b-${fresh}-1`,
    })
    expect(h.metrics.snapshot()).toMatchObject({
      dispatch_short_circuited: 0,
      provider_sms_mms_attempts: 3,
      provider_sms_mms_success: 1,
      provider_sms_mms_error: 2,
    })
  })

  it('gives the first provider its half-open trial, then fails over again when the trial fails', async () => {
    await breakFirst()
    h.clock.advance(500)
    await round()
    h.clock.advance(OPEN_MS)
    const [late] = await send(1)

    await round()
    expect(first.calls.at(-1)).toEqual({ messageId: late, attempt: 1 })
    h.clock.advance(500)
    await round()

    expect(await h.parley.messages.get(late ?? '')).toMatchObject({
      status: 'sent',
      attempts: 2,
      provider: 'mock-sms-b',
    })
  })

  it('goes back to the first provider once it recovers, and records that', async () => {
    await breakFirst()
    h.clock.advance(500)
    await round()
    firstMock.configure({ errorPct: 0 })
    h.clock.advance(OPEN_MS)
    const [later] = await send(1)

    await round()

    expect(await h.parley.messages.get(later ?? '')).toMatchObject({
      status: 'sent',
      provider: 'mock-sms',
      providerMessageId: `mock-sms-${later}-1`,
    })
  })

  it('defers to the earlier half-open time when every provider of the family is open', async () => {
    secondMock.configure({ errorPct: 100 })
    await breakFirst()
    h.clock.advance(500)
    await round()
    // Both retries failed on the second provider too: both breakers open,
    // the first until 10 s, the second until 10.5 s.
    expect(h.metrics.snapshot().provider_sms_mms_breaker_transitions).toBe(2)
    const [waiting] = await send(1)

    await round()

    const detail = await h.parley.messages.get(waiting ?? '')
    expect(detail).toMatchObject({ status: 'queued', attempts: 0 })
    // The first provider's half-open time, plus the 500 ms of jitter.
    expect(detail.nextAttemptAt).toBe(
      new Date(START + OPEN_MS + 500).toISOString(),
    )
    expect(h.metrics.snapshot().dispatch_short_circuited).toBe(1)
  })
})
