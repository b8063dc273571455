import type { ParleyEvents } from '../events.js'
import type { ChannelFamily } from '../messages/types.js'
import type { Provider, ProviderOutcome } from '../providers/provider.js'
import {
  type BreakerStateName,
  CircuitBreaker,
} from '../resilience/circuit-breaker.js'
import type { Clock } from '../util/clock.js'
import type { TypedEmitter } from '../util/emitter.js'
import type { Logger } from '../util/logger.js'
import type { ProviderRegistry } from './provider-registry.js'

/** Breaker settings shared by every provider. */
export interface BreakerSettings {
  readonly threshold: number
  readonly openMs: number
}

/** The provider chosen for a call, or when to try again. */
export type ProviderChoice =
  | { readonly kind: 'call'; readonly provider: Provider }
  | {
      readonly kind: 'defer'
      /** When the earliest provider of the family may take calls again. */
      readonly retryAt: number
      readonly reason: string
      /**
       * Whether a breaker refused the call (open, or half-open with its trial
       * running), rather than only a Retry-After pause.
       */
      readonly byBreaker: boolean
    }

/** One provider's breaker state, for gauges. */
export interface ProviderBreakerState {
  readonly provider: string
  readonly family: ChannelFamily
  readonly state: BreakerStateName
}

interface Health {
  readonly breaker: CircuitBreaker
  /** A 429 with Retry-After pauses the provider until then. */
  pausedUntil: number
}

/** What {@link ProviderHealthBoard} needs. */
export interface ProviderHealthDeps {
  readonly registry: ProviderRegistry
  readonly clock: Clock
  readonly events: TypedEmitter<ParleyEvents>
  readonly logger: Logger
  readonly breaker: BreakerSettings
}

/**
 * The health of every provider: its breaker and any pause a 429 asked for.
 * Chooses the first provider of a family that may take a call (failover)
 * and learns from each outcome.
 */
export class ProviderHealthBoard {
  private readonly health = new Map<string, Health>()
  // The message whose job is being decided on, named in the log line of
  // any breaker transition that decision causes.
  private trigger: string | undefined

  constructor(private readonly deps: ProviderHealthDeps) {}

  /**
   * The first provider of `family` that may take a call now, for the job
   * of message `messageId` (named in the log of a transition it causes).
   */
  choose(family: ChannelFamily, messageId?: string): ProviderChoice {
    this.trigger = messageId
    try {
      return this.firstAvailable(family)
    } finally {
      this.trigger = undefined
    }
  }

  private firstAvailable(family: ChannelFamily): ProviderChoice {
    const now = this.deps.clock.now()
    let retryAt = Number.POSITIVE_INFINITY
    let reason = `no provider for ${family}`
    let byBreaker = false
    for (const provider of this.deps.registry.providersFor(family)) {
      const health = this.healthOf(provider)
      if (health.pausedUntil > now) {
        retryAt = Math.min(retryAt, health.pausedUntil)
        reason = `${provider.name} paused by its Retry-After`
        continue
      }
      const admission = health.breaker.admit()
      if (admission.allowed) return { kind: 'call', provider }
      retryAt = Math.min(retryAt, admission.retryAt)
      reason = `${provider.name} breaker ${health.breaker.state.name}`
      byBreaker = true
    }
    return { kind: 'defer', retryAt, reason, byBreaker }
  }

  /**
   * Learns from the outcome of a call to `provider` for message
   * `messageId`.
   */
  record(
    provider: Provider,
    outcome: ProviderOutcome,
    messageId?: string,
  ): void {
    this.trigger = messageId
    try {
      this.learn(provider, outcome)
    } finally {
      this.trigger = undefined
    }
  }

  private learn(provider: Provider, outcome: ProviderOutcome): void {
    const health = this.healthOf(provider)
    switch (outcome.kind) {
      case 'sent':
      case 'permanent':
        // A permanent rejection is an answer: the provider is up.
        health.breaker.recordSuccess()
        return
      case 'transient':
        health.breaker.recordFailure()
        return
      case 'rate_limited':
        health.breaker.recordNeutral()
        if (outcome.retryAfterMs !== undefined) {
          const until = this.deps.clock.now() + outcome.retryAfterMs
          health.pausedUntil = Math.max(health.pausedUntil, until)
        }
        return
    }
  }

  /**
   * Gives back an admission whose call never happened (the job failed
   * before calling), so that a half-open breaker does not wait forever for
   * a trial that will not report.
   */
  release(provider: Provider): void {
    this.healthOf(provider).breaker.recordNeutral()
  }

  /**
   * Each registered provider's breaker state, read without moving any
   * breaker; a provider not called yet is closed.
   */
  breakerStates(): ProviderBreakerState[] {
    const families: readonly ChannelFamily[] = ['sms', 'email']
    return families.flatMap((family) =>
      this.deps.registry.providersFor(family).map((provider) => ({
        provider: provider.name,
        family,
        state:
          this.health.get(provider.name)?.breaker.peekStateName() ?? 'closed',
      })),
    )
  }

  private healthOf(provider: Provider): Health {
    let health = this.health.get(provider.name)
    if (!health) {
      health = { breaker: this.newBreaker(provider), pausedUntil: 0 }
      this.health.set(provider.name, health)
    }
    return health
  }

  private newBreaker(provider: Provider): CircuitBreaker {
    return new CircuitBreaker({
      threshold: this.deps.breaker.threshold,
      openMs: this.deps.breaker.openMs,
      clock: this.deps.clock,
      onTransition: (from, to) => this.onTransition(provider, from, to),
    })
  }

  private onTransition(
    provider: Provider,
    from: BreakerStateName,
    to: BreakerStateName,
  ): void {
    this.deps.events.emit('provider.breaker_transition', {
      family: provider.family,
      provider: provider.name,
      from,
      to,
    })
    this.deps.logger.warn('provider.breaker_transition', {
      provider: provider.name,
      family: provider.family,
      from,
      to,
      message_id: this.trigger,
    })
  }
}
