// Lock keys name the contended row a write locks first, and order the
// writes of one group commit (see GroupCommitter.submit). Every
// transaction that locks rows of more than one kind must lock them in one
// order across the whole system, or two of them (two instances on one
// Postgres) can each hold a row the other waits for. The order is the
// rank that starts each key:
//
// 1. a webhook's inbound event: the inbound worker holds the events it
//    claimed before it threads them into their conversations, so accepting
//    a redelivered webhook (whose insert waits on a claimed event) must not
//    hold a conversation meanwhile;
// 2. a conversation;
// 3. an idempotency key;
// then a provider id's delivery lock (see providerLockKey), whose key has
// no rank digit and sorts after all of these.
//
// Within a rank, keys sort by code unit, as the inbound worker sorts the
// conversations of a batch.
import type { ChannelFamily, NormalizedMessage } from '../messages/types.js'
import { conversationIdentity } from '../messages/conversation-key.js'

/** The key of a write that inserts a webhook's inbound event. */
export function inboundLockKey(
  family: ChannelFamily,
  providerMessageId: string,
): string {
  return `1 inbound:${family}:${providerMessageId}`
}

/**
 * The key of a write that threads `message`: its conversation row is the
 * one that concurrent writers contend for.
 */
export function conversationLockKey(message: NormalizedMessage): string {
  const { key } = conversationIdentity(
    message.family,
    message.fromParticipant,
    message.toParticipant,
  )
  return `2 conversation:${key}`
}

/** The key of a write that claims, completes or releases an idempotency key. */
export function idempotencyLockKey(scope: string, key: string): string {
  return `3 idempotency:${scope}:${key}`
}

/**
 * The key of a provider id's locks: the text its Postgres advisory lock is
 * hashed from, and the key by which the writes that take it are ordered (a
 * request's reports, a group commit's batch), so that they take the locks
 * of several ids in one order everywhere. Instances of two versions must
 * hash the same text, so it keeps its form (no rank digit).
 */
export function providerLockKey(
  family: ChannelFamily,
  providerMessageId: string,
): string {
  return `delivery:${family}:${providerMessageId}`
}
