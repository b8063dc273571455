import type { Clock } from '../util/clock.js'
import type {
  BucketShape,
  BucketTake,
  RateLimitStore,
} from './rate-limit-store.js'

/** Options of a {@link RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * Requests one key may make per minute, sustained, which is also the
   * burst a rested key may make at once: a whole number from 1 to 10^9.
   */
  readonly limitPerMinute: number
  /**
   * Where the buckets live. Limiters that share a store must keep their
   * keys apart, for example with an `ip:` or `sender:` prefix.
   */
  readonly store: RateLimitStore
  /** The time the buckets refill by; the limiter holds no timers. */
  readonly clock: Clock
}

/**
 * The answer for one request, with what the `RateLimit-*` and
 * `Retry-After` headers report.
 */
export interface RateLimitDecision {
  /** Whether the request may go ahead. */
  readonly allowed: boolean
  /** The limit, in requests per minute (`RateLimit-Limit`). */
  readonly limit: number
  /**
   * Whole requests the key may still make at once after this one, 0 or
   * more (`RateLimit-Remaining`).
   */
  readonly remaining: number
  /**
   * Whole seconds, rounded up, until the bucket is full again if the key
   * makes no more requests (`RateLimit-Reset`); at least 1 after any
   * request, since a request always leaves the bucket short of full.
   */
  readonly resetSeconds: number
  /**
   * When refused, whole seconds, rounded up and at least 1, until one
   * request would be allowed (`Retry-After`); 0 when allowed.
   */
  readonly retryAfterSeconds: number
}

const MS_PER_MINUTE = 60_000
const MAX_LIMIT_PER_MINUTE = 1_000_000_000

/**
 * A token-bucket rate limiter: a limit of N a minute is, for each key, a
 * bucket of N tokens refilled continuously at N/60 tokens a second, and a
 * request takes one token. A key may therefore burst N requests at once
 * and, in any span of t seconds, make at most N + N·t/60 requests; unlike
 * a fixed window it cannot make 2N at a window's edge. Reads the injected
 * clock; holds no timers.
 *
 * A token is 60,000 units (one per millisecond of a minute), so a bucket
 * refills by exactly N units a millisecond and the arithmetic stays in
 * whole numbers: answers are exact for a clock that reads whole
 * milliseconds.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({
 *   limitPerMinute: 120,
 *   store: new MemoryRateLimitStore({ maxKeys: 100_000 }),
 *   clock: systemClock,
 * })
 * const decision = await limiter.take('ip:203.0.113.7')
 * if (!decision.allowed) {
 *   // 429, with Retry-After: decision.retryAfterSeconds
 * }
 * ```
 */
export class RateLimiter {
  /** The limit, in requests per minute. */
  readonly limitPerMinute: number
  private readonly shape: BucketShape
  private readonly store: RateLimitStore
  private readonly clock: Clock

  constructor(options: RateLimiterOptions) {
    checkLimitPerMinute(options.limitPerMinute)
    checkHasMethod('store', options.store, 'take')
    checkHasMethod('clock', options.clock, 'now')
    this.limitPerMinute = options.limitPerMinute
    this.shape = Object.freeze(bucketShape(options.limitPerMinute))
    this.store = options.store
    this.clock = options.clock
  }

  /** Counts one request of `key` and says whether it may go ahead. */
  async take(key: string): Promise<RateLimitDecision> {
    const take = await this.store.take(key, this.shape, this.clock.now())
    return this.decide(take)
  }

  private decide(take: BucketTake): RateLimitDecision {
    const { capacity, cost, refillPerMs } = this.shape
    const level = Math.min(Math.max(take.level, 0), capacity)
    const unitsPerSecond = refillPerMs * 1000

    return {
      allowed: take.allowed,
      limit: this.limitPerMinute,
      remaining: Math.floor(level / cost),
      resetSeconds: Math.ceil((capacity - level) / unitsPerSecond),
      retryAfterSeconds: take.allowed
        ? 0
        : Math.max(1, Math.ceil((cost - level) / unitsPerSecond)),
    }
  }
}

/** The bucket of a limit of `limitPerMinute`, in units of 1/60,000 token. */
function bucketShape(limitPerMinute: number): BucketShape {
  return {
    capacity: limitPerMinute * MS_PER_MINUTE,
    refillPerMs: limitPerMinute,
    cost: MS_PER_MINUTE,
  }
}

function checkLimitPerMinute(value: number): void {
  if (Number.isInteger(value) && value >= 1 && value <= MAX_LIMIT_PER_MINUTE) {
    return
  }
  throw new RangeError(
    `rate limiter limitPerMinute must be a whole number from 1 to ${MAX_LIMIT_PER_MINUTE}, got ${value}`,
  )
}

function checkHasMethod(option: string, value: unknown, method: string): void {
  const target = value as Record<string, unknown> | null | undefined
  if (typeof target?.[method] === 'function') return
  throw new TypeError(
    `rate limiter ${option} must have a ${method}() method, got ${String(value)}`,
  )
}
