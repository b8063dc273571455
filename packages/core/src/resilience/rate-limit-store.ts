/**
 * The shape shared by the buckets of one limit, in whole units. A token is
 * a fixed number of units so that the refill per millisecond is a whole
 * number too, and every store can do exact integer arithmetic (in memory,
 * or in one SQL statement over integer columns).
 */
export interface BucketShape {
  /** Units a full bucket holds: the burst, 1 or more. */
  readonly capacity: number
  /** Units added per millisecond while the bucket is not full, above 0. */
  readonly refillPerMs: number
  /** Units one request takes, from 1 to `capacity`. */
  readonly cost: number
}

/** What one {@link RateLimitStore.take} did. */
export interface BucketTake {
  /** Whether the request took its units. */
  readonly allowed: boolean
  /**
   * Units in the bucket after the request, from 0 to the capacity: after
   * taking its cost when allowed, before any when refused.
   */
  readonly level: number
  /**
   * True when the request was refused because the store could hold no
   * bucket for a new key (it fails closed); `level` is then 0.
   */
  readonly storeFull: boolean
}

/**
 * Where a rate limiter keeps its token buckets. A bucket that does not
 * exist yet is full. Each `take` is one atomic step (refill for the time
 * passed, then take `cost` if the bucket holds it), so that a database
 * store can implement it with a single statement and several instances
 * can share one store.
 */
export interface RateLimitStore {
  /**
   * Refills the bucket of `key` up to `now` and takes one request's units
   * from it if it holds them.
   *
   * @param now - The caller's clock, in milliseconds since the epoch. A
   *   time earlier than the bucket's last update adds nothing.
   */
  take(key: string, shape: BucketShape, now: number): Promise<BucketTake>
}
