import type { ChannelFamily } from './types.js'

/** The two participants of a conversation, sorted, and its key. */
export interface ConversationIdentity {
  readonly key: string
  readonly family: ChannelFamily
  readonly participantA: string
  readonly participantB: string
}

/**
 * Identifies the conversation between two normalized participants on one
 * family. The participants are sorted (by code unit), so the direction of a
 * message does not matter: `sms:+1202…<->+1804…` either way.
 */
export function conversationIdentity(
  family: ChannelFamily,
  one: string,
  other: string,
): ConversationIdentity {
  const [participantA, participantB] =
    one <= other ? [one, other] : [other, one]
  return {
    key: `${family}:${participantA}<->${participantB}`,
    family,
    participantA,
    participantB,
  }
}
