import type { ChannelFamily } from './messages/types.js'
import type { ProviderOutcomeKind } from './providers/provider.js'
import type { BreakerStateName } from './resilience/circuit-breaker.js'

/**
 * What Parley's parts report as they work. Metrics subscribe to these
 * events rather than being incremented all over the code.
 */
export interface ParleyEvents {
  /** A provider call ended. */
  'dispatch.attempt': {
    readonly family: ChannelFamily
    readonly provider: string
    readonly messageId: string
    readonly attempt: number
    readonly outcome: ProviderOutcomeKind
  }
  /** A job was deferred because its provider's breaker was open. */
  'dispatch.short_circuited': {
    readonly family: ChannelFamily
    readonly provider: string
  }
  /** An outbound message failed for good. */
  'dispatch.dead_letter': {
    readonly family: ChannelFamily
    readonly messageId: string
    readonly reason: string
  }
  /** A provider's breaker changed state. */
  'provider.breaker_transition': {
    readonly family: ChannelFamily
    readonly provider: string
    readonly from: BreakerStateName
    readonly to: BreakerStateName
  }
  /** A message's family had no provider. */
  'routing.invalid': { readonly family: ChannelFamily }
  /** The inbound worker claimed events. */
  'inbound.claimed': { readonly count: number }
  /** The inbound worker threaded an event; latency from claim to done. */
  'inbound.processed': { readonly latencyUs: number }
  /** Threading an event failed; it will be retried. */
  'inbound.error': { readonly eventId: string; readonly error: string }
  /** An inbound event failed for good. */
  'inbound.dead_letter': { readonly eventId: string; readonly error: string }
  /** A conversation row was created. */
  'conversation.created': { readonly conversationId: string }
  /** A message joined an existing conversation. */
  'conversation.reused': { readonly conversationId: string }
  /** The conversation upsert failed. */
  'conversation.failed': { readonly error: string }
  /** A request was refused by a rate limit. */
  'ingress.rate_limited': { readonly scope: 'ip' | 'sender' }
  /** The global breaker short-circuited a request. */
  'ingress.breaker_open': Record<string, never>
  /** The global breaker changed state. */
  'ingress.breaker_transition': Record<string, never>
}
