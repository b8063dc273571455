import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ParleyEvents } from '../src/events.js'
import {
  formatPrometheusText,
  type MetricFamily,
} from '../src/metrics/exposition.js'
import { JSON_COUNTERS, Metrics } from '../src/metrics/metrics.js'
import { TypedEmitter } from '../src/util/emitter.js'
import { ManualClock } from './support.js'

const PROVIDERS = [
  { name: 'mock-sms', family: 'sms' },
  { name: 'twilio-main', family: 'sms' },
  { name: 'mock-email', family: 'email' },
] as const

// Any event that moves a counter, with any provider of its family.
const anyEvent = fc.oneof(
  fc.record({
    name: fc.constant('dispatch.attempt' as const),
    provider: fc.constantFrom(...PROVIDERS),
    outcome: fc.constantFrom(
      'sent' as const,
      'rate_limited' as const,
      'transient' as const,
      'permanent' as const,
    ),
  }),
  fc.record({
    name: fc.constant('provider.breaker_transition' as const),
    provider: fc.constantFrom(...PROVIDERS),
    to: fc.constantFrom(
      'open' as const,
      'half_open' as const,
      'closed' as const,
    ),
  }),
  fc.record({
    name: fc.constantFrom(
      'dispatch.short_circuited' as const,
      'dispatch.dead_letter' as const,
      'routing.invalid' as const,
    ),
    provider: fc.constantFrom(...PROVIDERS),
  }),
  fc.record({
    name: fc.constant('ingress.rate_limited' as const),
    scope: fc.constantFrom('ip' as const, 'sender' as const),
  }),
  fc.record({
    name: fc.constantFrom(
      'ingress.breaker_open' as const,
      'ingress.breaker_transition' as const,
      'inbound.error' as const,
      'inbound.dead_letter' as const,
      'conversation.created' as const,
      'conversation.reused' as const,
      'conversation.failed' as const,
    ),
  }),
  fc.record({
    name: fc.constant('inbound.claimed' as const),
    count: fc.integer({ min: 1, max: 100 }),
  }),
)

type AnyEvent = typeof anyEvent extends fc.Arbitrary<infer T> ? T : never

function emit(events: TypedEmitter<ParleyEvents>, event: AnyEvent): void {
  const base = { messageId: '1', eventId: '1', conversationId: '1', error: 'x' }
  const provider =
    'provider' in event
      ? { family: event.provider.family, provider: event.provider.name }
      : {}
  const payload = { ...base, ...provider, ...event, attempt: 1, reason: 'x' }
  if (event.name === 'provider.breaker_transition') {
    events.emit(event.name, {
      ...payload,
      from: 'closed',
      to: event.to,
    } as never)
    return
  }
  events.emit(event.name, payload as never)
}

function families(metrics: Metrics): Promise<MetricFamily[]> {
  return metrics.collect()
}

describe('Metrics as labelled series', () => {
  it('gives every JSON counter as the sum of its labelled series, for any events', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyEvent, { maxLength: 60 }), async (list) => {
        const events = new TypedEmitter<ParleyEvents>((error) => {
          throw error
        })
        const metrics = new Metrics(new ManualClock(), { providers: PROVIDERS })
        metrics.listen(events)
        for (const event of list) emit(events, event)

        const snapshot = metrics.snapshot() as unknown as Record<string, number>
        const exposed = await families(metrics)
        for (const [field, sum] of Object.entries(JSON_COUNTERS)) {
          const family = exposed.find(
            (f) => f.name === `parley_${sum.counter}_total`,
          )
          const total = (family?.samples ?? [])
            .filter((s) => !sum.family || s.labels.family === sum.family)
            .reduce((acc, s) => acc + s.value, 0)
          expect(total, field).toBe(snapshot[field])
        }
      }),
      { numRuns: 100 },
    )
  })

  it('lists the series of every configured provider at 0 before any call', async () => {
    const metrics = new Metrics(new ManualClock(), { providers: PROVIDERS })

    const attempts = (await metrics.collect()).find(
      (f) => f.name === 'parley_dispatch_attempts_total',
    )

    expect(attempts?.samples).toEqual(
      PROVIDERS.map(({ name, family }) => ({
        name: 'parley_dispatch_attempts_total',
        labels: { family, provider: name },
        value: 0,
      })),
    )
  })
})

describe('formatPrometheusText', () => {
  it('writes HELP, TYPE and samples per family, each line ended', () => {
    const text = formatPrometheusText([
      {
        name: 'parley_example_total',
        type: 'counter',
        help: 'An example.',
        samples: [
          { name: 'parley_example_total', labels: { family: 'sms' }, value: 3 },
          { name: 'parley_example_total', labels: {}, value: 0.25 },
        ],
      },
    ])

    expect(text).toBe(
      [
        '# HELP parley_example_total An example.',
        '# TYPE parley_example_total counter',
        'parley_example_total{family="sms"} 3',
        'parley_example_total 0.25',
        '',
      ].join('\n'),
    )
  })

  it('escapes backslashes, quotes and line feeds as the format requires', () => {
    const text = formatPrometheusText([
      {
        name: 'parley_x',
        type: 'gauge',
        help: 'a \\ b\nc "d"',
        samples: [
          { name: 'parley_x', labels: { provider: 'a\\b"c\nd' }, value: 1 },
        ],
      },
    ])

    expect(text.split('\n')[0]).toBe('# HELP parley_x a \\\\ b\\nc "d"')
    expect(text.split('\n')[2]).toBe('parley_x{provider="a\\\\b\\"c\\nd"} 1')
  })

  it('spells the special values as the format does', () => {
    const text = formatPrometheusText([
      {
        name: 'parley_x',
        type: 'gauge',
        help: 'x',
        samples: [
          { name: 'parley_x', labels: { v: 'a' }, value: Number.NaN },
          { name: 'parley_x', labels: { v: 'b' }, value: Infinity },
          { name: 'parley_x', labels: { v: 'c' }, value: -Infinity },
          { name: 'parley_x', labels: { v: 'd' }, value: 1e-7 },
        ],
      },
    ])

    expect(text.split('\n').slice(2, 6)).toEqual([
      'parley_x{v="a"} NaN',
      'parley_x{v="b"} +Inf',
      'parley_x{v="c"} -Inf',
      'parley_x{v="d"} 1e-7',
    ])
  })
})
