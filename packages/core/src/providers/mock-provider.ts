import type { ChannelFamily } from '../messages/types.js'
import type {
  OutboundMessage,
  Provider,
  ProviderOutcome,
  SendContext,
} from './provider.js'

/** Options of {@link createMockProvider}. */
export interface MockProviderOptions {
  /** The family it serves. */
  family: ChannelFamily
  /** Its name. @default `mock-sms` or `mock-email` */
  name?: string
}

/**
 * A provider that delivers nothing: it accepts every message and answers
 * with a made-up id (`mock-<family>-<message id>-<attempt>`). It lets the
 * server run offline; it really sends nothing.
 */
export function createMockProvider(options: MockProviderOptions): Provider {
  const family = options.family
  const name = options.name ?? `mock-${family}`
  return {
    name,
    family,
    async send(
      message: OutboundMessage,
      context: SendContext,
    ): Promise<ProviderOutcome> {
      return {
        kind: 'sent',
        providerMessageId: `${name}-${message.id}-${context.attempt}`,
      }
    },
  }
}
