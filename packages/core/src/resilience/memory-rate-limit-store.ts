import { type Logger, silentLogger } from '../util/logger.js'
import { type HeapItem, IndexedMinHeap } from './indexed-min-heap.js'
import type {
  BucketShape,
  BucketTake,
  RateLimitStore,
} from './rate-limit-store.js'

/** Options of a {@link MemoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /**
   * The most buckets (keys) held at once, from 1 to 10^8. A new key that
   * finds the store at this size takes the place of a bucket that has
   * refilled, or is refused when every bucket is still refilling.
   * @default 100_000
   */
  readonly maxKeys?: number
  /** Where the `rate_limit.store_full` warning goes. @default silent */
  readonly logger?: Logger
  /**
   * The least time between two `rate_limit.store_full` warnings, in
   * milliseconds of the limiter's clock, 0 or more; refusals in between
   * are counted into the next warning.
   * @default 60_000
   */
  readonly warnIntervalMs?: number
}

/** The default of {@link MemoryRateLimitStoreOptions.maxKeys}. */
export const DEFAULT_RATE_LIMIT_MAX_KEYS = 100_000

const MAX_KEYS_BOUND = 100_000_000
const DEFAULT_WARN_INTERVAL_MS = 60_000

/** One key's bucket, placed in the heap by the time it is full again. */
interface Bucket extends HeapItem {
  readonly key: string
  shape: BucketShape
  /** Units held at `updatedAt`. */
  level: number
  /** The latest time the bucket was refilled to, in epoch ms. */
  updatedAt: number
  /** When the bucket is full again if nothing takes from it, in epoch ms. */
  fullAt: number
}

/**
 * A {@link RateLimitStore} in process memory, holding at most `maxKeys`
 * buckets. A bucket that has refilled is idle: it answers exactly as the
 * new bucket that would replace it, so it may be dropped without changing
 * any answer. A heap orders the buckets by the time they are full again,
 * so a new key at the cap looks only at the top: when that bucket is full
 * it makes room, otherwise every bucket is busy and the new key is refused
 * (fail closed: a flood of new keys cannot push out the buckets that are
 * limiting someone) with a warning.
 *
 * Cost per `take`: O(1) map access plus O(log maxKeys) to reorder the
 * heap, also when evicting; memory O(maxKeys). Buckets that are full are
 * dropped only to make room, never by a timer.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new Map<string, Bucket>()
  private readonly byFullAt = new IndexedMinHeap<Bucket>((b) => b.fullAt)
  private readonly maxKeys: number
  private readonly logger: Logger
  private readonly warnIntervalMs: number
  private refusedSinceWarning = 0
  private nextWarningAt = -Infinity

  constructor(options: MemoryRateLimitStoreOptions = {}) {
    this.maxKeys = options.maxKeys ?? DEFAULT_RATE_LIMIT_MAX_KEYS
    this.logger = options.logger ?? silentLogger
    this.warnIntervalMs = options.warnIntervalMs ?? DEFAULT_WARN_INTERVAL_MS
    checkMaxKeys(this.maxKeys)
    checkWarnInterval(this.warnIntervalMs)
  }

  /** The number of buckets held. */
  get size(): number {
    return this.buckets.size
  }

  /** {@inheritDoc RateLimitStore.take} */
  take(key: string, shape: BucketShape, now: number): Promise<BucketTake> {
    return Promise.resolve(this.takeFrom(key, shape, now))
  }

  private takeFrom(key: string, shape: BucketShape, now: number): BucketTake {
    const bucket = this.buckets.get(key) ?? this.admit(key, shape, now)
    if (bucket === undefined) return this.refuseNewKey(now)

    bucket.shape = shape
    refill(bucket, now)
    const allowed = bucket.level >= shape.cost
    if (allowed) bucket.level -= shape.cost

    bucket.fullAt = fullAt(bucket)
    this.byFullAt.update(bucket)
    return { allowed, level: bucket.level, storeFull: false }
  }

  /** A new, full bucket for `key`, or `undefined` when there is no room. */
  private admit(
    key: string,
    shape: BucketShape,
    now: number,
  ): Bucket | undefined {
    if (this.buckets.size >= this.maxKeys && !this.evictIdle(now)) {
      return undefined
    }

    const bucket: Bucket = {
      key,
      shape,
      level: shape.capacity,
      updatedAt: now,
      fullAt: now,
      heapIndex: -1,
    }
    this.buckets.set(key, bucket)
    this.byFullAt.push(bucket)
    return bucket
  }

  /**
   * Drops the bucket that is full soonest, if it is full by `now`. The heap
   * orders by a computed time, but fullness is checked exactly, so a
   * rounding tie can only refuse a new key, never drop a busy bucket.
   */
  private evictIdle(now: number): boolean {
    const soonest = this.byFullAt.peek()
    if (soonest === undefined || !isFullAt(soonest, now)) return false

    this.byFullAt.pop()
    this.buckets.delete(soonest.key)
    return true
  }

  private refuseNewKey(now: number): BucketTake {
    this.refusedSinceWarning += 1
    if (now >= this.nextWarningAt) this.warnStoreFull(now)
    return { allowed: false, level: 0, storeFull: true }
  }

  private warnStoreFull(now: number): void {
    this.logger.warn('rate_limit.store_full', {
      max_keys: this.maxKeys,
      refused: this.refusedSinceWarning,
    })
    this.refusedSinceWarning = 0
    this.nextWarningAt = now + this.warnIntervalMs
  }
}

/**
 * Brings `bucket` up to `now`, never above its capacity. A clock that went
 * back adds nothing, and the bucket keeps its later time so that the span
 * is not refilled twice. Whole units and whole milliseconds stay exact.
 */
function refill(bucket: Bucket, now: number): void {
  const { capacity, refillPerMs } = bucket.shape
  const elapsed = Math.max(0, now - bucket.updatedAt)
  const missing = capacity - bucket.level

  bucket.level = capacity - Math.max(0, missing - elapsed * refillPerMs)
  bucket.updatedAt = Math.max(bucket.updatedAt, now)
}

/** Whether `bucket` has refilled to its capacity by `now` (exactly). */
function isFullAt(bucket: Bucket, now: number): boolean {
  const elapsed = Math.max(0, now - bucket.updatedAt)
  const { capacity, refillPerMs } = bucket.shape
  return bucket.level + elapsed * refillPerMs >= capacity
}

/** When `bucket` is full again if nothing takes from it. */
function fullAt(bucket: Bucket): number {
  const { capacity, refillPerMs } = bucket.shape
  return bucket.updatedAt + (capacity - bucket.level) / refillPerMs
}

function checkMaxKeys(value: number): void {
  if (Number.isInteger(value) && value >= 1 && value <= MAX_KEYS_BOUND) return
  throw new RangeError(
    `rate limit store maxKeys must be a whole number from 1 to ${MAX_KEYS_BOUND}, got ${value}`,
  )
}

function checkWarnInterval(value: number): void {
  if (Number.isFinite(value) && value >= 0) return
  throw new RangeError(
    `rate limit store warnIntervalMs must be a number >= 0, got ${value}`,
  )
}
