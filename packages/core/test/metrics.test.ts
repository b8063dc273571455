import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  type MetricsSnapshot,
  type Parley,
  type ParleyDatabase,
} from '@parley/core'
import type { ParleyEvents } from '../src/events.js'
import { Metrics } from '../src/metrics/metrics.js'
import { TypedEmitter } from '../src/util/emitter.js'
import { ManualClock, memoryDb } from './support.js'

// DESIGN section 7, written out here on purpose: the snapshot must match
// the documented list, not whatever the source happens to hold.
const DOCUMENTED_FIELDS = [
  'ts_unix_ms',
  'rate_limited',
  'breaker_open',
  'breaker_transitions',
  'dispatch_attempts',
  'dispatch_success',
  'dispatch_rate_limited',
  'dispatch_error',
  'provider_sms_mms_attempts',
  'provider_sms_mms_success',
  'provider_sms_mms_rate_limited',
  'provider_sms_mms_error',
  'provider_sms_mms_breaker_transitions',
  'provider_email_attempts',
  'provider_email_success',
  'provider_email_rate_limited',
  'provider_email_error',
  'provider_email_breaker_transitions',
  'worker_claimed',
  'worker_processed',
  'worker_error',
  'worker_dead_letter',
  'worker_latency_avg_us',
  'worker_latency_max_us',
  'invalid_routing',
  'conversations_created',
  'conversations_reused',
  'conversations_failures',
  'dispatch_short_circuited',
  'dispatch_dead_letter',
]

function seriesValue(
  metrics: Metrics,
  counter: string,
  labels: Record<string, string>,
): number | undefined {
  return metrics
    .counterSeries()
    .find(
      (series) =>
        series.counter === counter &&
        Object.entries(labels).every(
          ([name, value]) =>
            series.labels[name as keyof typeof series.labels] === value,
        ),
    )?.value
}

function expectNonNegativeIntegers(snapshot: MetricsSnapshot): void {
  for (const [name, value] of Object.entries(snapshot)) {
    expect(Number.isSafeInteger(value), name).toBe(true)
    expect(value, name).toBeGreaterThanOrEqual(0)
  }
}

function setup() {
  const clock = new ManualClock()
  const events = new TypedEmitter<ParleyEvents>((error) => {
    throw error
  })
  const metrics = new Metrics(clock)
  metrics.listen(events)
  return { clock, events, metrics }
}

describe('Metrics', () => {
  it('has exactly the documented fields, all zero at first', () => {
    const { metrics, clock } = setup()

    const snapshot = metrics.snapshot()

    expect(Object.keys(snapshot).sort()).toEqual([...DOCUMENTED_FIELDS].sort())
    expectNonNegativeIntegers(snapshot)
    for (const name of DOCUMENTED_FIELDS.filter((f) => f !== 'ts_unix_ms')) {
      expect(snapshot[name as keyof MetricsSnapshot], name).toBe(0)
    }
    expect(snapshot.ts_unix_ms).toBe(clock.now())
  })

  it('reads ts_unix_ms from the injected clock as a whole number', () => {
    const { metrics, clock } = setup()
    clock.t = 1_730_462_400_123.75

    expect(metrics.snapshot().ts_unix_ms).toBe(1_730_462_400_123)
  })

  it('counts each provider outcome overall and per family', () => {
    const { metrics, events } = setup()
    const attempt = (
      family: 'sms' | 'email',
      outcome: ParleyEvents['dispatch.attempt']['outcome'],
    ) =>
      events.emit('dispatch.attempt', {
        family,
        provider: `p-${family}`,
        messageId: '1',
        attempt: 1,
        outcome,
      })

    attempt('sms', 'sent')
    attempt('sms', 'transient')
    attempt('sms', 'permanent')
    attempt('sms', 'rate_limited')
    attempt('email', 'sent')
    attempt('email', 'sent')

    expect(metrics.snapshot()).toMatchObject({
      dispatch_attempts: 6,
      dispatch_success: 3,
      dispatch_error: 2,
      dispatch_rate_limited: 1,
      provider_sms_mms_attempts: 4,
      provider_sms_mms_success: 1,
      provider_sms_mms_error: 2,
      provider_sms_mms_rate_limited: 1,
      provider_email_attempts: 2,
      provider_email_success: 2,
      provider_email_error: 0,
      provider_email_rate_limited: 0,
    })
    const sms = { family: 'sms', provider: 'p-sms' }
    expect(seriesValue(metrics, 'dispatch_attempts', sms)).toBe(4)
    expect(seriesValue(metrics, 'dispatch_success', sms)).toBe(1)
    expect(seriesValue(metrics, 'dispatch_rate_limited', sms)).toBe(1)
    expect(seriesValue(metrics, 'dispatch_error', sms)).toBe(2)
  })

  it('sums the providers of one family into its fields', () => {
    const { metrics, events } = setup()
    for (const provider of ['twilio-main', 'twilio-backup']) {
      events.emit('dispatch.attempt', {
        family: 'sms',
        provider,
        messageId: '1',
        attempt: 1,
        outcome: 'sent',
      })
      events.emit('provider.breaker_transition', {
        family: 'sms',
        provider,
        from: 'closed',
        to: 'open',
      })
    }

    expect(metrics.snapshot()).toMatchObject({
      provider_sms_mms_attempts: 2,
      provider_sms_mms_success: 2,
      provider_sms_mms_breaker_transitions: 2,
      provider_email_breaker_transitions: 0,
    })
    const providers = metrics
      .counterSeries()
      .filter((series) => series.counter === 'dispatch_attempts')
      .map((series) => series.labels.provider)
    expect(providers).toEqual(['twilio-main', 'twilio-backup'])
  })

  it('keeps apart providers whose names would run together, and hands out series that later counts leave as they were', () => {
    const { metrics, events } = setup()
    const attempt = (family: 'sms' | 'email', provider: string) =>
      events.emit('dispatch.attempt', {
        family,
        provider,
        messageId: '1',
        attempt: 1,
        outcome: 'sent',
      })

    attempt('sms', 'a')
    attempt('sms', 'a\u0000')
    attempt('sms', 'a\u0000')
    attempt('sms', '1:a')
    const before = metrics.counterSeries()
    attempt('sms', 'a')

    expect(seriesValue(metrics, 'dispatch_attempts', { provider: 'a' })).toBe(2)
    expect(
      seriesValue(metrics, 'dispatch_attempts', { provider: 'a\u0000' }),
    ).toBe(2)
    expect(seriesValue(metrics, 'dispatch_attempts', { provider: '1:a' })).toBe(
      1,
    )
    const earlier = before.find(
      (series) =>
        series.counter === 'dispatch_attempts' &&
        series.labels.provider === 'a',
    )
    expect(earlier?.value).toBe(1)
  })

  it('maps every other event to its counter', () => {
    const { metrics, events } = setup()

    events.emit('dispatch.short_circuited', { family: 'sms', provider: 'p' })
    events.emit('dispatch.dead_letter', {
      family: 'email',
      messageId: '1',
      reason: 'x',
    })
    events.emit('routing.invalid', { family: 'email' })
    events.emit('inbound.claimed', { count: 5 })
    events.emit('inbound.error', { eventId: '1', error: 'x' })
    events.emit('inbound.dead_letter', { eventId: '1', error: 'x' })
    events.emit('conversation.created', { conversationId: '1' })
    events.emit('conversation.reused', { conversationId: '1' })
    events.emit('conversation.reused', { conversationId: '1' })
    events.emit('conversation.failed', { error: 'x' })
    events.emit('ingress.rate_limited', { scope: 'ip' })
    events.emit('ingress.rate_limited', { scope: 'sender' })
    events.emit('ingress.breaker_open', {})
    events.emit('ingress.breaker_transition', {})

    expect(metrics.snapshot()).toMatchObject({
      dispatch_short_circuited: 1,
      dispatch_dead_letter: 1,
      invalid_routing: 1,
      worker_claimed: 5,
      worker_error: 1,
      worker_dead_letter: 1,
      conversations_created: 1,
      conversations_reused: 2,
      conversations_failures: 1,
      rate_limited: 2,
      breaker_open: 1,
      breaker_transitions: 1,
    })
  })

  it('derives whole-microsecond latency gauges from processed events', () => {
    const { metrics, events } = setup()

    events.emit('inbound.processed', { latencyUs: 100.4 })
    events.emit('inbound.processed', { latencyUs: 250.6 })
    events.emit('inbound.processed', { latencyUs: -3 })

    const snapshot = metrics.snapshot()
    expect(snapshot.worker_processed).toBe(3)
    expect(snapshot.worker_latency_max_us).toBe(251)
    expect(snapshot.worker_latency_avg_us).toBe(Math.round((100 + 251) / 3))
    expectNonNegativeIntegers(snapshot)
  })

  it('returns a copy that later events do not change', () => {
    const { metrics, events } = setup()
    const before = metrics.snapshot()

    events.emit('routing.invalid', { family: 'sms' })

    expect(before.invalid_routing).toBe(0)
    expect(metrics.snapshot().invalid_routing).toBe(1)
  })
})

describe('Parley metrics', () => {
  let db: ParleyDatabase
  let parley: Parley

  beforeEach(async () => {
    db = await memoryDb()
    parley = await createParley({
      db,
      providers: [createMockProvider({ family: 'sms' })],
      clock: new ManualClock(),
      migrate: false,
    })
  })

  afterEach(async () => {
    await parley.stop()
    await db.close()
  })

  it('serves the documented snapshot from the facade', () => {
    const snapshot = parley.metrics.snapshot()

    expect(Object.keys(snapshot).sort()).toEqual([...DOCUMENTED_FIELDS].sort())
    expectNonNegativeIntegers(snapshot)
  })
})
