/** Exponential backoff with full jitter. */
export interface BackoffPolicy {
  /** Delay before the first retry's ceiling, in milliseconds. */
  readonly baseMs: number
  /** Largest delay, in milliseconds. */
  readonly maxMs: number
}

/**
 * The delay before retry number `retry` (1 for the first retry): a uniform
 * draw in [0, min(max, base * 2^(retry-1))], so that many failures at once
 * do not all retry at once ("full jitter").
 */
export function backoffDelay(
  policy: BackoffPolicy,
  retry: number,
  random: () => number,
): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 52)
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent)
  return Math.floor(random() * ceiling)
}
