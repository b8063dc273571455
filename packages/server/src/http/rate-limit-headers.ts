import type { ServerResponse } from 'node:http'
import type { RateLimitDecision } from '@parley/core'

/**
 * Of the decisions that applied to a request (client and sender), the one
 * the `RateLimit-*` headers describe: a refusal if there is one, else the
 * one closer to exhaustion (the smaller share of its limit left).
 */
export function closestToExhaustion(
  decisions: readonly (RateLimitDecision | undefined)[],
): RateLimitDecision | undefined {
  let chosen: RateLimitDecision | undefined
  for (const decision of decisions) {
    if (!decision) continue
    if (!chosen || rank(decision) < rank(chosen)) chosen = decision
  }
  return chosen
}

function rank(decision: RateLimitDecision): number {
  return decision.allowed ? decision.remaining / decision.limit : -1
}

/** Sets `RateLimit-Limit`, `-Remaining`, `-Reset` (and `Retry-After`). */
export function setRateLimitHeaders(
  response: ServerResponse,
  decision: RateLimitDecision | undefined,
): void {
  if (!decision || response.headersSent) return
  response.setHeader('RateLimit-Limit', String(decision.limit))
  response.setHeader('RateLimit-Remaining', String(decision.remaining))
  response.setHeader('RateLimit-Reset', String(decision.resetSeconds))
  if (!decision.allowed) {
    response.setHeader('Retry-After', String(decision.retryAfterSeconds))
  }
}
