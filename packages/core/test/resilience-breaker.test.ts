/**
 * The breaker "Must show", on a manual clock: an SMS provider that
 * fails every call opens its breaker after the threshold while email keeps
 * flowing; during the cool-down no SMS call is made and due jobs are
 * deferred, uncounted; half-open lets exactly one trial through; once the
 * provider recovers, every queued SMS is sent.
 *
 * The scenario (threshold 3, cool-down 30 s, concurrency 4, every random
 * draw 0.5, so backoff is half its ceiling and deferral jitter is 500 ms):
 *
 * - t0: SMS 1-3 fail, opening the breaker until t0+30 s; email 4 is sent.
 * - t0+1 s: SMS 5-6 and email 7-8 are sent in; every SMS is deferred to
 *   t0+30.5 s, the emails go out; steps until t0+29.999 s call nothing.
 * - t0+30.5 s: one trial (SMS 1) fails and reopens the breaker until
 *   t0+60.5 s; the other due SMS are deferred.
 * - the provider recovers; at t0+32 s the due SMS still meet the open
 *   breaker and are deferred to t0+61 s.
 * - t0+61 s: one trial (SMS 1) succeeds and closes the breaker; the rest
 *   follow.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMockProvider, type MockProvider } from '@parley/core'
import type { ParleyEvents } from '../src/events.js'
import type { DispatchWorker } from '../src/queue/dispatch-worker.js'
import {
  countingProvider,
  type CountingProvider,
  createHarness,
  DIALECT_LABEL,
  emailRequest,
  type Harness,
  jobOf,
  smsRequest,
  START,
} from './support.js'

type Transition = ParleyEvents['provider.breaker_transition']

const OPEN_MS = 30_000
const SMS_IDS = ['1', '2', '3', '5', '6'] as const
const EMAIL_IDS = ['4', '7', '8'] as const

interface Scenario {
  readonly h: Harness
  readonly worker: DispatchWorker
  readonly smsMock: MockProvider
  readonly sms: CountingProvider
  readonly email: CountingProvider
  readonly transitions: Transition[]
}

async function setUp(): Promise<Scenario> {
  const smsMock = createMockProvider({
    family: 'sms',
    faults: { errorPct: 100 },
    seed: 1,
  })
  const sms = countingProvider(smsMock)
  const email = countingProvider(
    createMockProvider({ family: 'email', seed: 1 }),
  )
  const h = await createHarness({
    providers: [sms, email],
    config: {
      breakerThreshold: 3,
      breakerOpenMs: OPEN_MS,
      dispatchConcurrency: 4,
    },
  })
  const transitions: Transition[] = []
  h.events.on('provider.breaker_transition', (t) => transitions.push(t))
  return { h, worker: h.dispatchWorker(), smsMock, sms, email, transitions }
}

/** Claims and runs until a claim no longer fills every slot. */
async function drain(worker: DispatchWorker): Promise<void> {
  for (;;) {
    const full = await worker.step()
    await worker.idle()
    if (!full) return
  }
}

/** Moves the clock to `ms` after the start, then drains. */
async function at(s: Scenario, ms: number): Promise<void> {
  s.h.clock.advance(START + ms - s.h.clock.now())
  await drain(s.worker)
}

async function sendSms(s: Scenario, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    await s.h.parley.send(smsRequest({ body: `sms ${i}` }))
  }
}

async function sendEmail(s: Scenario, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    await s.h.parley.send(emailRequest({ body: `email ${i}` }), {
      channel: 'email',
    })
  }
}

/** t0: three SMS fail and open the breaker; one email goes out. */
async function openBreaker(s: Scenario): Promise<void> {
  await sendSms(s, 3)
  await sendEmail(s, 1)
  await at(s, 0)
}

/** t0+1 s to t0+29.999 s: more mail comes in while the breaker is open. */
async function coolDown(s: Scenario): Promise<void> {
  s.h.clock.advance(1000)
  await sendSms(s, 2)
  await sendEmail(s, 2)
  for (const ms of [1000, 5000, 10_000, 20_000, 29_000, 29_999]) {
    await at(s, ms)
  }
}

/** t0+30.5 s: the first half-open trial, which fails. */
async function failedTrial(s: Scenario): Promise<void> {
  await at(s, 30_500)
}

/** The provider recovers; the SMS due at t0+32 s meet the open breaker. */
async function recover(s: Scenario): Promise<void> {
  s.smsMock.configure({ errorPct: 0 })
  await at(s, 32_000)
}

/** t0+61 s: a successful trial closes the breaker; the rest follow. */
async function closeBreaker(s: Scenario): Promise<void> {
  await at(s, 61_000)
  await at(s, 62_500)
}

const names = (transitions: Transition[]) =>
  transitions.map((t) => `${t.provider}: ${t.from} -> ${t.to}`)

async function statuses(s: Scenario, ids: readonly string[]) {
  const out: Record<string, string> = {}
  for (const id of ids) out[id] = (await s.h.parley.messages.get(id)).status
  return out
}

async function attempts(s: Scenario, ids: readonly string[]) {
  const out: Record<string, number> = {}
  for (const id of ids) out[id] = (await jobOf(s.h.db, id)).attempts
  return out
}

describe(`a provider breaker over a failing SMS provider on ${DIALECT_LABEL}`, () => {
  let s: Scenario

  beforeEach(async () => {
    s = await setUp()
    return () => s.h.close()
  })

  it('opens after the threshold of consecutive failures, moving only the SMS transition counter', async () => {
    await openBreaker(s)

    expect(s.sms.calls).toHaveLength(3)
    expect(names(s.transitions)).toEqual(['mock-sms: closed -> open'])
    expect(s.h.metrics.snapshot()).toMatchObject({
      provider_sms_mms_breaker_transitions: 1,
      provider_email_breaker_transitions: 0,
      provider_sms_mms_error: 3,
    })
  })

  it('keeps email flowing while the SMS breaker is open', async () => {
    await openBreaker(s)
    await coolDown(s)

    expect(await statuses(s, EMAIL_IDS)).toEqual({
      4: 'sent',
      7: 'sent',
      8: 'sent',
    })
    expect(s.h.metrics.snapshot()).toMatchObject({
      provider_email_attempts: 3,
      provider_email_success: 3,
      provider_email_breaker_transitions: 0,
    })
  })

  it('attempts no SMS call during the cool-down and defers each due job to the half-open time plus jitter', async () => {
    await openBreaker(s)
    await coolDown(s)

    expect(s.sms.calls).toHaveLength(3)
    for (const id of SMS_IDS) {
      const detail = await s.h.parley.messages.get(id)
      expect(detail.status, `message ${id}`).toBe('queued')
      const next = Date.parse(detail.nextAttemptAt ?? '')
      expect(next, `message ${id}`).toBeGreaterThanOrEqual(START + OPEN_MS)
      expect(next, `message ${id}`).toBeLessThan(START + OPEN_MS + 1000)
    }
    expect(s.h.metrics.snapshot().dispatch_short_circuited).toBe(5)
  })

  it('does not count a deferral as an attempt', async () => {
    await openBreaker(s)
    await coolDown(s)

    expect(await attempts(s, SMS_IDS)).toEqual({ 1: 1, 2: 1, 3: 1, 5: 0, 6: 0 })
    expect(s.h.metrics.snapshot().provider_sms_mms_attempts).toBe(3)
  })

  it('lets exactly one trial through at half-open while several jobs are due, and reopens when it fails', async () => {
    await openBreaker(s)
    await coolDown(s)

    await failedTrial(s)

    expect(s.sms.calls.slice(3)).toEqual([{ messageId: '1', attempt: 2 }])
    expect(names(s.transitions)).toEqual([
      'mock-sms: closed -> open',
      'mock-sms: open -> half_open',
      'mock-sms: half_open -> open',
    ])
    // Four due jobs were claimed at once (concurrency 4), then the fifth:
    // one trial, three that met the running trial, one the reopened breaker.
    expect(s.h.metrics.snapshot().dispatch_short_circuited).toBe(5 + 4)
  })

  it('makes no call during a second cool-down after a failed trial, even once the provider is back', async () => {
    await openBreaker(s)
    await coolDown(s)
    await failedTrial(s)

    await recover(s)

    expect(s.sms.calls).toHaveLength(4)
    expect(s.h.metrics.snapshot().dispatch_short_circuited).toBe(9 + 4)
  })

  it('sends every queued SMS once the provider recovers, after a single successful trial closes the breaker', async () => {
    await openBreaker(s)
    await coolDown(s)
    await failedTrial(s)
    await recover(s)
    const callsBefore = s.sms.calls.length

    s.h.clock.advance(START + 61_000 - s.h.clock.now())
    await s.worker.step()
    await s.worker.idle()
    expect(s.sms.calls.slice(callsBefore)).toEqual([
      { messageId: '1', attempt: 3 },
    ])
    await closeBreaker(s)

    expect(await statuses(s, SMS_IDS)).toEqual({
      1: 'sent',
      2: 'sent',
      3: 'sent',
      5: 'sent',
      6: 'sent',
    })
    expect(names(s.transitions).slice(3)).toEqual([
      'mock-sms: open -> half_open',
      'mock-sms: half_open -> closed',
    ])
    expect(await attempts(s, SMS_IDS)).toEqual({ 1: 3, 2: 2, 3: 2, 5: 1, 6: 1 })
    expect(s.h.metrics.snapshot()).toMatchObject({
      provider_sms_mms_attempts: 9,
      provider_sms_mms_success: 5,
      provider_sms_mms_error: 4,
      provider_sms_mms_breaker_transitions: 5,
      provider_email_breaker_transitions: 0,
      dispatch_attempts: 12,
      dispatch_short_circuited: 13 + 3,
      dispatch_dead_letter: 0,
    })
    expect(s.sms.calls).toHaveLength(9)
  })
})
