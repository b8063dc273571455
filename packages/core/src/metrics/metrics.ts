import type { ParleyEvents } from '../events.js'
import type { ChannelFamily } from '../messages/types.js'
import type { ProviderOutcomeKind } from '../providers/provider.js'
import type { BreakerStateName } from '../resilience/circuit-breaker.js'
import type { Clock } from '../util/clock.js'
import type { TypedEmitter } from '../util/emitter.js'
import {
  COUNTER_CATALOG,
  COUNTER_NAMES,
  type CounterName,
  type LabelName,
  type Labels,
} from './counter-catalog.js'
import type { MetricFamily } from './exposition.js'

/**
 * Every metric Parley reports, as non-negative integers. All fields are
 * counters (monotonic, reset only by a restart) except `ts_unix_ms` and the
 * two `worker_latency_*` gauges. `docs/metrics.md` says when each moves.
 */
export interface MetricsSnapshot {
  /** When the snapshot was taken, in milliseconds since the Unix epoch. */
  ts_unix_ms: number
  /** Requests refused with 429 by the per-IP or per-sender limit. */
  rate_limited: number
  /**
   * API requests the global breaker answered 503 without trying the backend.
   */
  breaker_open: number
  /** State changes of the global breaker. */
  breaker_transitions: number
  /** Provider calls made, of every family. */
  dispatch_attempts: number
  /** Provider calls that sent the message. */
  dispatch_success: number
  /** Provider calls answered as rate limited (429). */
  dispatch_rate_limited: number
  /** Provider calls that failed, transient or permanent. */
  dispatch_error: number
  /** `dispatch_attempts` of the SMS/MMS family. */
  provider_sms_mms_attempts: number
  /** `dispatch_success` of the SMS/MMS family. */
  provider_sms_mms_success: number
  /** `dispatch_rate_limited` of the SMS/MMS family. */
  provider_sms_mms_rate_limited: number
  /** `dispatch_error` of the SMS/MMS family. */
  provider_sms_mms_error: number
  /** State changes of the SMS/MMS providers' breakers. */
  provider_sms_mms_breaker_transitions: number
  /** `dispatch_attempts` of the email family. */
  provider_email_attempts: number
  /** `dispatch_success` of the email family. */
  provider_email_success: number
  /** `dispatch_rate_limited` of the email family. */
  provider_email_rate_limited: number
  /** `dispatch_error` of the email family. */
  provider_email_error: number
  /** State changes of the email providers' breakers. */
  provider_email_breaker_transitions: number
  /** Inbound events the inbound worker claimed. */
  worker_claimed: number
  /**
   * Inbound events threaded into their conversation (counted once the commit is
   * durable).
   */
  worker_processed: number
  /** Inbound events whose threading failed and will be retried. */
  worker_error: number
  /** Inbound events that failed for good and became dead letters. */
  worker_dead_letter: number
  /**
   * Mean claim-to-done time of the processed inbound events, in microseconds (a
   * gauge).
   */
  worker_latency_avg_us: number
  /**
   * Longest claim-to-done time of a processed inbound event, in microseconds (a
   * gauge).
   */
  worker_latency_max_us: number
  /**
   * Sends refused, or queued jobs failed, because their family had no provider.
   */
  invalid_routing: number
  /** Messages that started a new conversation. */
  conversations_created: number
  /** Messages threaded into an existing conversation. */
  conversations_reused: number
  /** Messages whose conversation upsert failed (a storage error). */
  conversations_failures: number
  /** Send jobs deferred because their provider's breaker was open. */
  dispatch_short_circuited: number
  /** Messages that failed for good and became dispatch dead letters. */
  dispatch_dead_letter: number
}

type SnapshotCounter = Exclude<
  keyof MetricsSnapshot,
  'ts_unix_ms' | 'worker_latency_avg_us' | 'worker_latency_max_us'
>

/** A JSON field as a sum over the series of one counter. */
interface JsonSum {
  readonly counter: CounterName
  /** Only the series of this family; every series when absent. */
  readonly family?: ChannelFamily
}

/**
 * Each JSON counter and the labelled series it adds up. The JSON has no
 * counts of its own: this table is the whole of what it derives.
 */
export const JSON_COUNTERS: Readonly<Record<SnapshotCounter, JsonSum>> = {
  rate_limited: { counter: 'rate_limited' },
  breaker_open: { counter: 'global_breaker_short_circuits' },
  breaker_transitions: { counter: 'global_breaker_transitions' },
  dispatch_attempts: { counter: 'dispatch_attempts' },
  dispatch_success: { counter: 'dispatch_success' },
  dispatch_rate_limited: { counter: 'dispatch_rate_limited' },
  dispatch_error: { counter: 'dispatch_error' },
  provider_sms_mms_attempts: { counter: 'dispatch_attempts', family: 'sms' },
  provider_sms_mms_success: { counter: 'dispatch_success', family: 'sms' },
  provider_sms_mms_rate_limited: {
    counter: 'dispatch_rate_limited',
    family: 'sms',
  },
  provider_sms_mms_error: { counter: 'dispatch_error', family: 'sms' },
  provider_sms_mms_breaker_transitions: {
    counter: 'provider_breaker_transitions',
    family: 'sms',
  },
  provider_email_attempts: { counter: 'dispatch_attempts', family: 'email' },
  provider_email_success: { counter: 'dispatch_success', family: 'email' },
  provider_email_rate_limited: {
    counter: 'dispatch_rate_limited',
    family: 'email',
  },
  provider_email_error: { counter: 'dispatch_error', family: 'email' },
  provider_email_breaker_transitions: {
    counter: 'provider_breaker_transitions',
    family: 'email',
  },
  worker_claimed: { counter: 'inbound_claimed' },
  worker_processed: { counter: 'inbound_processed' },
  worker_error: { counter: 'inbound_errors' },
  worker_dead_letter: { counter: 'inbound_dead_letters' },
  invalid_routing: { counter: 'invalid_routing' },
  conversations_created: { counter: 'conversations_created' },
  conversations_reused: { counter: 'conversations_reused' },
  conversations_failures: { counter: 'conversation_upsert_failures' },
  dispatch_short_circuited: { counter: 'dispatch_short_circuited' },
  dispatch_dead_letter: { counter: 'dispatch_dead_letters' },
}

/** One labelled series of a counter and its count. */
export interface CounterSeries {
  readonly counter: CounterName
  readonly labels: Labels
  readonly value: number
}

// A series as the metrics keep it: its value is counted in place.
interface LiveSeries {
  readonly counter: CounterName
  readonly labels: Labels
  value: number
}

/** A provider, as the metrics know it. */
export interface MetricsProvider {
  readonly name: string
  readonly family: ChannelFamily
}

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /**
   * The configured providers: their series exist (at 0) from the start,
   * so that a rate over them is defined before the first call.
   * @default none (series appear with their first count)
   */
  readonly providers?: readonly MetricsProvider[]
  /**
   * Gauges read when {@link Metrics.collect} runs (breaker states, queue
   * depths). @default none
   */
  readonly gauges?: () => Promise<readonly MetricFamily[]>
}

const OUTCOME_COUNTER: Readonly<Record<ProviderOutcomeKind, CounterName>> = {
  sent: 'dispatch_success',
  rate_limited: 'dispatch_rate_limited',
  transient: 'dispatch_error',
  permanent: 'dispatch_error',
}

const FAMILIES: readonly ChannelFamily[] = ['sms', 'email']
const BREAKER_STATES: readonly BreakerStateName[] = [
  'closed',
  'open',
  'half_open',
]
const US_PER_SECOND = 1_000_000

/**
 * The live metrics of one Parley instance. It listens to Parley's events
 * and keeps every count under its labels (provider, family, scope); the
 * JSON snapshot and the Prometheus exposition are both read from these
 * same series, so the two cannot disagree.
 */
export class Metrics {
  private readonly series = new Map<CounterName, Map<string, LiveSeries>>()
  private latencyTotalUs = 0
  private latencyMaxUs = 0

  constructor(
    private readonly clock: Clock,
    private readonly options: MetricsOptions = {},
  ) {
    for (const name of COUNTER_NAMES) this.series.set(name, new Map())
    this.createInitialSeries(options.providers ?? [])
  }

  /** A copy of every JSON metric now. */
  snapshot(): MetricsSnapshot {
    const snapshot: Record<string, number> = {
      ts_unix_ms: Math.trunc(this.clock.now()),
    }
    for (const [field, sum] of Object.entries(JSON_COUNTERS)) {
      snapshot[field] = this.sum(sum)
    }
    const processed = this.sum({ counter: 'inbound_processed' })
    snapshot.worker_latency_avg_us =
      processed === 0 ? 0 : Math.round(this.latencyTotalUs / processed)
    snapshot.worker_latency_max_us = this.latencyMaxUs
    return snapshot as unknown as MetricsSnapshot
  }

  /** Every labelled counter series now, in catalog order. */
  counterSeries(): CounterSeries[] {
    return COUNTER_NAMES.flatMap((name) =>
      [...this.seriesOf(name).values()].map((series) => ({ ...series })),
    )
  }

  /**
   * Every metric as families for an exposition format: the counters with
   * their labels, the inbound latency, then the gauges read now. Counters
   * are copied before the gauges are awaited, so they all belong to one
   * instant.
   */
  async collect(): Promise<MetricFamily[]> {
    const families = [...this.counterFamilies(), ...this.latencyFamilies()]
    const gauges = (await this.options.gauges?.()) ?? []
    return [...families, ...gauges]
  }

  /** Subscribes these metrics to `events`. */
  listen(events: TypedEmitter<ParleyEvents>): void {
    events.on('dispatch.attempt', (e) => this.onAttempt(e))
    events.on('dispatch.short_circuited', (e) =>
      this.add('dispatch_short_circuited', { family: e.family }),
    )
    events.on('dispatch.dead_letter', (e) =>
      this.add('dispatch_dead_letters', { family: e.family }),
    )
    events.on('provider.breaker_transition', (e) =>
      this.add('provider_breaker_transitions', {
        family: e.family,
        provider: e.provider,
        to: e.to,
      }),
    )
    events.on('routing.invalid', (e) =>
      this.add('invalid_routing', { family: e.family }),
    )
    this.listenInbound(events)
    this.listenIngress(events)
  }

  private listenInbound(events: TypedEmitter<ParleyEvents>): void {
    events.on('inbound.claimed', (e) =>
      this.add('inbound_claimed', {}, e.count),
    )
    events.on('inbound.processed', (e) => this.onProcessed(e.latencyUs))
    events.on('inbound.error', () => this.add('inbound_errors', {}))
    events.on('inbound.dead_letter', () => this.add('inbound_dead_letters', {}))
    events.on('conversation.created', () =>
      this.add('conversations_created', {}),
    )
    events.on('conversation.reused', () => this.add('conversations_reused', {}))
    events.on('conversation.failed', () =>
      this.add('conversation_upsert_failures', {}),
    )
  }

  private listenIngress(events: TypedEmitter<ParleyEvents>): void {
    events.on('ingress.rate_limited', (e) =>
      this.add('rate_limited', { scope: e.scope }),
    )
    events.on('ingress.breaker_open', () =>
      this.add('global_breaker_short_circuits', {}),
    )
    events.on('ingress.breaker_transition', () =>
      this.add('global_breaker_transitions', {}),
    )
  }

  private onAttempt(event: ParleyEvents['dispatch.attempt']): void {
    const labels = { family: event.family, provider: event.provider }
    this.add('dispatch_attempts', labels)
    this.add(OUTCOME_COUNTER[event.outcome], labels)
  }

  private onProcessed(latencyUs: number): void {
    const micros = Math.max(0, Math.round(latencyUs))
    this.add('inbound_processed', {})
    this.latencyTotalUs += micros
    this.latencyMaxUs = Math.max(this.latencyMaxUs, micros)
  }

  // Every series whose label values are known up front starts at 0.
  private createInitialSeries(providers: readonly MetricsProvider[]): void {
    for (const name of COUNTER_NAMES) {
      if (COUNTER_CATALOG[name].labels.length === 0) this.add(name, {}, 0)
    }
    for (const scope of ['ip', 'sender']) this.add('rate_limited', { scope }, 0)
    for (const family of FAMILIES) {
      this.add('dispatch_short_circuited', { family }, 0)
      this.add('dispatch_dead_letters', { family }, 0)
      this.add('invalid_routing', { family }, 0)
    }
    for (const provider of providers) this.createProviderSeries(provider)
  }

  private createProviderSeries({ name, family }: MetricsProvider): void {
    const labels = { family, provider: name }
    for (const counter of new Set(Object.values(OUTCOME_COUNTER))) {
      this.add(counter, labels, 0)
    }
    this.add('dispatch_attempts', labels, 0)
    for (const to of BREAKER_STATES) {
      this.add('provider_breaker_transitions', { ...labels, to }, 0)
    }
  }

  private counterFamilies(): MetricFamily[] {
    return COUNTER_NAMES.map((name) => ({
      name: `parley_${name}_total`,
      type: 'counter' as const,
      help: COUNTER_CATALOG[name].help,
      samples: [...this.seriesOf(name).values()].map((series) => ({
        name: `parley_${name}_total`,
        labels: { ...series.labels },
        value: series.value,
      })),
    }))
  }

  // The JSON's average and maximum, in the shape Prometheus prefers: a
  // summary (sum and count, so any window's average can be computed) and
  // a gauge for the maximum. The count is the processed counter itself.
  private latencyFamilies(): MetricFamily[] {
    const name = 'parley_inbound_latency_seconds'
    return [
      {
        name,
        type: 'summary',
        help: 'Time from claiming an inbound event to committing its message.',
        samples: [
          { name: `${name}_sum`, labels: {}, value: this.latencySumSeconds() },
          {
            name: `${name}_count`,
            labels: {},
            value: this.sum({ counter: 'inbound_processed' }),
          },
        ],
      },
      {
        name: 'parley_inbound_latency_max_seconds',
        type: 'gauge',
        help: 'The longest time from claim to commit of an inbound event.',
        samples: [
          {
            name: 'parley_inbound_latency_max_seconds',
            labels: {},
            value: this.latencyMaxUs / US_PER_SECOND,
          },
        ],
      },
    ]
  }

  private latencySumSeconds(): number {
    return this.latencyTotalUs / US_PER_SECOND
  }

  private sum({ counter, family }: JsonSum): number {
    let total = 0
    for (const series of this.seriesOf(counter).values()) {
      if (family === undefined || series.labels.family === family) {
        total += series.value
      }
    }
    return total
  }

  // Counted on every message: the series is found by its label values and
  // counted in place; a new one is made only the first time.
  private add(counter: CounterName, labels: Labels, by = 1): void {
    const key = seriesKey(counter, labels)
    const map = this.seriesOf(counter)
    const series = map.get(key)
    if (series) series.value += by
    else {
      map.set(key, {
        counter,
        labels: orderedLabels(counter, labels),
        value: by,
      })
    }
  }

  private seriesOf(counter: CounterName): Map<string, LiveSeries> {
    const map = this.series.get(counter)
    if (!map) throw new Error(`unknown counter ${counter}`)
    return map
  }
}

// Labels in the catalog's order, so that every series of a counter lists
// them alike; a label the catalog does not name is a programming error.
function orderedLabels(counter: CounterName, labels: Labels): Labels {
  const names = COUNTER_CATALOG[counter].labels
  const ordered: Partial<Record<LabelName, string>> = {}
  for (const name of names) ordered[name] = labels[name] ?? ''
  return ordered
}

// The label values, each prefixed by its length, so that no two label sets
// share a key whatever characters a provider's name holds.
function seriesKey(counter: CounterName, labels: Labels): string {
  let key = ''
  for (const name of COUNTER_CATALOG[counter].labels) {
    const value = labels[name] ?? ''
    key += `${value.length}:${value}`
  }
  return key
}
