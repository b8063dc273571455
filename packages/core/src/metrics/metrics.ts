import type { ParleyEvents } from '../events.js'
import type { ChannelFamily } from '../messages/types.js'
import type { ProviderOutcomeKind } from '../providers/provider.js'
import type { Clock } from '../util/clock.js'
import type { TypedEmitter } from '../util/emitter.js'

/**
 * Every metric Parley reports, as non-negative integers. All fields are
 * counters (monotonic, reset only by a restart) except `ts_unix_ms` and the
 * two `worker_latency_*` gauges. `docs/metrics.md` says when each moves.
 */
export interface MetricsSnapshot {
  ts_unix_ms: number
  rate_limited: number
  breaker_open: number
  breaker_transitions: number
  dispatch_attempts: number
  dispatch_success: number
  dispatch_rate_limited: number
  dispatch_error: number
  provider_sms_mms_attempts: number
  provider_sms_mms_success: number
  provider_sms_mms_rate_limited: number
  provider_sms_mms_error: number
  provider_sms_mms_breaker_transitions: number
  provider_email_attempts: number
  provider_email_success: number
  provider_email_rate_limited: number
  provider_email_error: number
  provider_email_breaker_transitions: number
  worker_claimed: number
  worker_processed: number
  worker_error: number
  worker_dead_letter: number
  worker_latency_avg_us: number
  worker_latency_max_us: number
  invalid_routing: number
  conversations_created: number
  conversations_reused: number
  conversations_failures: number
  dispatch_short_circuited: number
  dispatch_dead_letter: number
}

/** Counters of one provider (the JSON sums them per family). */
export interface ProviderCounters {
  readonly family: ChannelFamily
  attempts: number
  success: number
  rateLimited: number
  error: number
  breakerTransitions: number
}

type Counter = Exclude<
  keyof MetricsSnapshot,
  'ts_unix_ms' | 'worker_latency_avg_us' | 'worker_latency_max_us'
>

const FAMILY_PREFIX: Readonly<Record<ChannelFamily, string>> = {
  sms: 'provider_sms_mms',
  email: 'provider_email',
}

const OUTCOME_COUNTER: Readonly<
  Record<ProviderOutcomeKind, 'success' | 'rate_limited' | 'error'>
> = {
  sent: 'success',
  rate_limited: 'rate_limited',
  transient: 'error',
  permanent: 'error',
}

/**
 * The live metrics of one Parley instance. It listens to Parley's events
 * and is the one source of truth for both the JSON and any other format.
 */
export class Metrics {
  private readonly counters = new Map<Counter, number>()
  private readonly providers = new Map<string, ProviderCounters>()
  private latencyTotalUs = 0
  private latencyMaxUs = 0

  constructor(private readonly clock: Clock) {}

  /** A copy of every metric now. */
  snapshot(): MetricsSnapshot {
    const processed = this.get('worker_processed')
    const snapshot = { ts_unix_ms: Math.trunc(this.clock.now()) } as Record<
      string,
      number
    >
    for (const name of COUNTERS) snapshot[name] = this.get(name)
    snapshot.worker_latency_avg_us =
      processed === 0 ? 0 : Math.round(this.latencyTotalUs / processed)
    snapshot.worker_latency_max_us = this.latencyMaxUs
    return snapshot as unknown as MetricsSnapshot
  }

  /** Per-provider counters, for formats that label by provider. */
  providerCounters(): ReadonlyMap<string, Readonly<ProviderCounters>> {
    return this.providers
  }

  /** Subscribes these metrics to `events`. */
  listen(events: TypedEmitter<ParleyEvents>): void {
    events.on('dispatch.attempt', (e) => this.onAttempt(e))
    events.on('dispatch.short_circuited', () =>
      this.add('dispatch_short_circuited'),
    )
    events.on('dispatch.dead_letter', () => this.add('dispatch_dead_letter'))
    events.on('provider.breaker_transition', (e) => this.onBreaker(e))
    events.on('routing.invalid', () => this.add('invalid_routing'))
    events.on('inbound.claimed', (e) => this.add('worker_claimed', e.count))
    events.on('inbound.processed', (e) => this.onProcessed(e.latencyUs))
    events.on('inbound.error', () => this.add('worker_error'))
    events.on('inbound.dead_letter', () => this.add('worker_dead_letter'))
    events.on('conversation.created', () => this.add('conversations_created'))
    events.on('conversation.reused', () => this.add('conversations_reused'))
    events.on('conversation.failed', () => this.add('conversations_failures'))
    events.on('ingress.rate_limited', () => this.add('rate_limited'))
    events.on('ingress.breaker_open', () => this.add('breaker_open'))
    events.on('ingress.breaker_transition', () =>
      this.add('breaker_transitions'),
    )
  }

  private onAttempt(event: ParleyEvents['dispatch.attempt']): void {
    const kind = OUTCOME_COUNTER[event.outcome]
    const prefix = FAMILY_PREFIX[event.family]
    this.add('dispatch_attempts')
    this.add(`dispatch_${kind}` as Counter)
    this.add(`${prefix}_attempts` as Counter)
    this.add(`${prefix}_${kind}` as Counter)

    const provider = this.provider(event.provider, event.family)
    provider.attempts += 1
    if (kind === 'success') provider.success += 1
    if (kind === 'rate_limited') provider.rateLimited += 1
    if (kind === 'error') provider.error += 1
  }

  private onBreaker(event: ParleyEvents['provider.breaker_transition']): void {
    this.add(`${FAMILY_PREFIX[event.family]}_breaker_transitions` as Counter)
    this.provider(event.provider, event.family).breakerTransitions += 1
  }

  private onProcessed(latencyUs: number): void {
    const micros = Math.max(0, Math.round(latencyUs))
    this.add('worker_processed')
    this.latencyTotalUs += micros
    this.latencyMaxUs = Math.max(this.latencyMaxUs, micros)
  }

  private provider(name: string, family: ChannelFamily): ProviderCounters {
    let counters = this.providers.get(name)
    if (!counters) {
      counters = {
        family,
        attempts: 0,
        success: 0,
        rateLimited: 0,
        error: 0,
        breakerTransitions: 0,
      }
      this.providers.set(name, counters)
    }
    return counters
  }

  private add(name: Counter, by = 1): void {
    this.counters.set(name, this.get(name) + by)
  }

  private get(name: Counter): number {
    return this.counters.get(name) ?? 0
  }
}

const COUNTERS: readonly Counter[] = [
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
  'invalid_routing',
  'conversations_created',
  'conversations_reused',
  'conversations_failures',
  'dispatch_short_circuited',
  'dispatch_dead_letter',
]
