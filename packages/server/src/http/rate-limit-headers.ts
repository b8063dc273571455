import type { OutgoingHttpHeaders } from 'node:http'
import type { RateLimitDecision } from '@parley/core'

/**
 * Of the decisions that applied to a request (client, then sender), the one
 * the `RateLimit-*` headers describe: a refusal if there is one, else the
 * one closer to exhaustion (the smaller share of its limit left).
 */
export function closestToExhaustion(
  client: RateLimitDecision | undefined,
  other: RateLimitDecision | undefined,
): RateLimitDecision | undefined {
  if (!client) return other
  if (!other) return client
  // On a tie the client's decision, as it comes first.
  return rank(other) < rank(client) ? other : client
}

function rank(decision: RateLimitDecision): number {
  return decision.allowed ? decision.remaining / decision.limit : -1
}

/** Adds `RateLimit-Limit`, `-Remaining`, `-Reset` (and `Retry-After`). */
export function addRateLimitHeaders(
  headers: OutgoingHttpHeaders,
  decision: RateLimitDecision | undefined,
): void {
  if (!decision) return
  headers['RateLimit-Limit'] = String(decision.limit)
  headers['RateLimit-Remaining'] = String(decision.remaining)
  headers['RateLimit-Reset'] = String(decision.resetSeconds)
  if (!decision.allowed) {
    headers['Retry-After'] = String(decision.retryAfterSeconds)
  }
}
