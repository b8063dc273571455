/**
 * The token-bucket limiter and its memory store, on a manual clock: the
 * counts and headers of one key, continuous refill, the N + N·t/60 bound
 * against an independent model, and the store's cap under floods.
 */
import { describe, expect, it } from 'vitest'
import { IndexedMinHeap } from '../src/resilience/indexed-min-heap.js'
import { MemoryRateLimitStore } from '../src/resilience/memory-rate-limit-store.js'
import type {
  BucketShape,
  BucketTake,
} from '../src/resilience/rate-limit-store.js'
import {
  type RateLimitDecision,
  RateLimiter,
} from '../src/resilience/rate-limiter.js'
import {
  type LogFields,
  type Logger,
  silentLogger,
} from '../src/util/logger.js'
import { ManualClock } from './support.js'

const MINUTE_MS = 60_000

function limiter(limitPerMinute: number, maxKeys = 100_000) {
  const clock = new ManualClock()
  const store = new MemoryRateLimitStore({ maxKeys })
  return {
    clock,
    store,
    limiter: new RateLimiter({ limitPerMinute, store, clock }),
  }
}

async function takeTimes(
  l: RateLimiter,
  key: string,
  times: number,
): Promise<RateLimitDecision[]> {
  const decisions: RateLimitDecision[] = []
  for (let i = 0; i < times; i += 1) decisions.push(await l.take(key))
  return decisions
}

async function countAllowed(l: RateLimiter, key: string, times: number) {
  const decisions = await takeTimes(l, key, times)
  return decisions.filter((d) => d.allowed).length
}

/** A repeatable source of numbers in [0, 1) (mulberry32). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

/** Gaps in ms between requests: bursts, trickles and pauses, mixed. */
function burstySchedule(random: () => number, count: number): number[] {
  return Array.from({ length: count }, () => {
    const roll = random()
    if (roll < 0.6) return 0
    if (roll < 0.9) return Math.floor(random() * 2_000)
    return Math.floor(random() * 2 * MINUTE_MS)
  })
}

/**
 * The same limit as GCRA (the "virtual scheduling" form of a token
 * bucket), in BigInt: times are scaled by N so that the emission interval
 * of 60,000/N ms becomes exactly 60,000.
 */
class GcraModel {
  private theoreticalArrival = -(2n ** 62n)

  constructor(private readonly limitPerMinute: number) {}

  take(now: number): { allowed: boolean; remaining: number } {
    const n = BigInt(this.limitPerMinute)
    const scaledNow = BigInt(now) * n
    const tolerance = (n - 1n) * 60_000n
    const start =
      this.theoreticalArrival > scaledNow ? this.theoreticalArrival : scaledNow
    if (start - scaledNow > tolerance) {
      return { allowed: false, remaining: 0 }
    }

    this.theoreticalArrival = start + 60_000n
    const headroom = n * 60_000n - (this.theoreticalArrival - scaledNow)
    return { allowed: true, remaining: Number(headroom / 60_000n) }
  }
}

function recordingLogger() {
  const warnings: Array<{ event: string; fields?: LogFields }> = []
  const logger: Logger = {
    ...silentLogger,
    warn: (event, fields) => warnings.push({ event, fields }),
  }
  return { logger, warnings }
}

describe('RateLimiter', () => {
  it('lets 120 requests through at 120/min on a still clock; the 121st is the first refused', async () => {
    const { limiter: l } = limiter(120)

    const decisions = await takeTimes(l, 'ip:192.0.2.1', 122)

    expect(decisions.findIndex((d) => !d.allowed)).toBe(120)
    decisions.slice(0, 120).forEach((d, i) => {
      expect(d).toEqual({
        allowed: true,
        limit: 120,
        remaining: 119 - i,
        // Each token taken is 500 ms of refill.
        resetSeconds: Math.ceil(((i + 1) * 500) / 1000),
        retryAfterSeconds: 0,
      })
    })
    for (const refused of decisions.slice(120)) {
      expect(refused).toEqual({
        allowed: false,
        limit: 120,
        remaining: 0,
        resetSeconds: 60,
        retryAfterSeconds: 1,
      })
    }
  })

  it('answers a rested key with a full bucket: remaining N-1, reset within a second', async () => {
    const { limiter: l } = limiter(60)

    expect(await l.take('k')).toEqual({
      allowed: true,
      limit: 60,
      remaining: 59,
      resetSeconds: 1,
      retryAfterSeconds: 0,
    })
  })

  it('refills continuously: 30 s after 120/min is spent, 60 more pass', async () => {
    const { clock, limiter: l } = limiter(120)
    await takeTimes(l, 'k', 120)

    clock.advance(30_000)

    expect(await countAllowed(l, 'k', 61)).toBe(60)
  })

  it('refills one token every 60/N seconds, not in whole-minute steps', async () => {
    const { clock, limiter: l } = limiter(120)
    await takeTimes(l, 'k', 121)

    clock.advance(499)
    expect((await l.take('k')).allowed).toBe(false)
    clock.advance(1)
    expect((await l.take('k')).allowed).toBe(true)
    expect((await l.take('k')).allowed).toBe(false)
  })

  it('says when one request will pass, rounded up to whole seconds', async () => {
    const { clock, limiter: l } = limiter(6)
    await takeTimes(l, 'k', 6)

    const refused = await l.take('k')
    clock.advance(9_000)
    const almost = await l.take('k')
    clock.advance(999)
    const stillNot = await l.take('k')
    clock.advance(1)
    const passes = await l.take('k')

    expect(refused).toMatchObject({ retryAfterSeconds: 10, resetSeconds: 60 })
    expect(almost).toMatchObject({ allowed: false, retryAfterSeconds: 1 })
    expect(stillNot).toMatchObject({ allowed: false, retryAfterSeconds: 1 })
    expect(passes).toMatchObject({
      allowed: true,
      remaining: 0,
      resetSeconds: 60,
      retryAfterSeconds: 0,
    })
  })

  it('rounds a reset of a fraction of a second up to 1 and refills fully in a minute', async () => {
    const { clock, limiter: l } = limiter(1_000_000)
    const first = await l.take('k')
    clock.advance(MINUTE_MS)

    expect(first.resetSeconds).toBe(1)
    expect((await l.take('k')).remaining).toBe(999_999)
  })

  it('keeps keys apart', async () => {
    const { limiter: l } = limiter(2)
    await takeTimes(l, 'a', 3)

    expect((await l.take('b')).allowed).toBe(true)
    expect((await l.take('a')).allowed).toBe(false)
  })

  it('does not refill twice when the clock goes back and forth', async () => {
    const { clock, limiter: l } = limiter(120)
    await takeTimes(l, 'k', 120)

    clock.advance(-10_000)
    expect((await l.take('k')).allowed).toBe(false)
    clock.advance(10_500)

    expect(await countAllowed(l, 'k', 2)).toBe(1)
  })

  it.each([1, 7, 60, 120, 6_000])(
    'at %i/min matches an exact model and never passes N + N·t/60 in any span (seeded bursts)',
    async (limitPerMinute) => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const { clock, limiter: l } = limiter(limitPerMinute)
        const model = new GcraModel(limitPerMinute)
        const allowedAt: number[] = []

        for (const gap of burstySchedule(seededRandom(seed), 1_500)) {
          clock.advance(gap)
          const decision = await l.take('k')
          const expected = model.take(clock.now())
          expect(decision.allowed).toBe(expected.allowed)
          expect(decision.remaining).toBe(expected.remaining)
          if (decision.allowed) allowedAt.push(clock.now())
        }

        expectWithinBound(allowedAt, limitPerMinute)
      }
    },
  )

  it('lets a client that asks every millisecond have exactly N + N·t/60', async () => {
    const { clock, limiter: l } = limiter(120)
    let allowed = 0

    for (let t = 0; t <= MINUTE_MS; t += 1) {
      if ((await l.take('k')).allowed) allowed += 1
      clock.advance(1)
    }

    // 120 at once, then one every 500 ms through t = 60 s.
    expect(allowed).toBe(120 + 120)
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e10])(
    'refuses limitPerMinute %s with a RangeError naming it',
    (limitPerMinute) => {
      const make = () =>
        new RateLimiter({
          limitPerMinute,
          store: new MemoryRateLimitStore(),
          clock: new ManualClock(),
        })
      expect(make).toThrow(RangeError)
      expect(make).toThrow(`limitPerMinute`)
      expect(make).toThrow(`got ${limitPerMinute}`)
    },
  )

  it('refuses a store or clock without its method with a TypeError', () => {
    const clock = new ManualClock()
    const store = new MemoryRateLimitStore()
    const noStore = { limitPerMinute: 1, store: {}, clock } as never
    const noClock = { limitPerMinute: 1, store, clock: undefined } as never

    expect(() => new RateLimiter(noStore)).toThrow(/store must have a take/)
    expect(() => new RateLimiter(noClock)).toThrow(/clock must have a now/)
  })

  it('reads its store once per request, with the time of its clock', async () => {
    const calls: Array<{ key: string; shape: BucketShape; now: number }> = []
    const store = {
      take(key: string, shape: BucketShape, now: number): Promise<BucketTake> {
        calls.push({ key, shape, now })
        return Promise.resolve({ allowed: false, level: 0, storeFull: true })
      },
    }
    const clock = new ManualClock()
    const l = new RateLimiter({ limitPerMinute: 120, store, clock })

    const decision = await l.take('ip:x')

    expect(calls).toEqual([
      {
        key: 'ip:x',
        shape: { capacity: 120 * MINUTE_MS, refillPerMs: 120, cost: MINUTE_MS },
        now: clock.now(),
      },
    ])
    expect(decision).toEqual({
      allowed: false,
      limit: 120,
      remaining: 0,
      resetSeconds: 60,
      retryAfterSeconds: 1,
    })
  })
})

describe('MemoryRateLimitStore', () => {
  it('holds no more than maxKeys buckets while 100,000 new keys arrive at once', async () => {
    const { store, limiter: l } = limiter(120, 1_000)
    let allowed = 0
    let maxSize = 0

    for (let i = 0; i < 100_000; i += 1) {
      if ((await l.take(`sender:${i}`)).allowed) allowed += 1
      maxSize = Math.max(maxSize, store.size)
    }

    // On a still clock every bucket stays busy: the cap fails closed.
    expect(maxSize).toBe(1_000)
    expect(store.size).toBe(1_000)
    expect(allowed).toBe(1_000)
  })

  it('serves a steady flood of 100,000 new keys within maxKeys by evicting idle buckets', async () => {
    const { clock, store, limiter: l } = limiter(120, 1_000)
    let allowed = 0
    let maxSize = 0

    for (let i = 0; i < 100_000; i += 1) {
      if ((await l.take(`sender:${i}`)).allowed) allowed += 1
      maxSize = Math.max(maxSize, store.size)
      // One token refills in 500 ms, so buckets are idle long before
      // a thousand more keys have come.
      clock.advance(1)
    }

    expect(maxSize).toBe(1_000)
    expect(allowed).toBe(100_000)
  })

  it('keeps up with 300,000 keys at the default cap of 100,000', async () => {
    const clock = new ManualClock()
    const store = new MemoryRateLimitStore()
    const shape = {
      capacity: 120 * MINUTE_MS,
      refillPerMs: 120,
      cost: MINUTE_MS,
    }
    const started = performance.now()

    for (let i = 0; i < 300_000; i += 1) {
      await store.take(`ip:${i}`, shape, clock.now())
      clock.advance(1)
    }

    expect(store.size).toBe(100_000)
    // Generous: an O(n) scan per request would take minutes here.
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  it('evicts idle buckets without changing any answer (against an uncapped store)', async () => {
    for (const seed of [11, 12, 13]) {
      const random = seededRandom(seed)
      const clock = new ManualClock()
      const capped = new MemoryRateLimitStore({ maxKeys: 20 })
      const uncapped = new MemoryRateLimitStore({ maxKeys: 1_000_000 })
      const shape = { capacity: 3 * MINUTE_MS, refillPerMs: 3, cost: MINUTE_MS }
      const seen = { allowed: 0, refused: 0, storeFull: 0 }
      const served = new Set<string>()

      for (let i = 0; i < 20_000; i += 1) {
        clock.advance(Math.floor(random() * 1_000))
        const key = `k${Math.floor(random() * 60)}`
        const answer = await capped.take(key, shape, clock.now())
        expect(capped.size).toBeLessThanOrEqual(20)
        if (answer.storeFull) {
          seen.storeFull += 1
          continue
        }
        expect(answer).toEqual(await uncapped.take(key, shape, clock.now()))
        seen[answer.allowed ? 'allowed' : 'refused'] += 1
        served.add(key)
      }

      // The schedule must exercise eviction (60 keys served through 20
      // places), refusals and fail-closed.
      expect(served.size).toBe(60)
      expect(seen.allowed).toBeGreaterThan(5_000)
      expect(seen.refused).toBeGreaterThan(500)
      expect(seen.storeFull).toBeGreaterThan(500)
    }
  })

  it('refuses a new key when every bucket is busy, warning at most once per interval', async () => {
    const clock = new ManualClock()
    const { logger, warnings } = recordingLogger()
    const store = new MemoryRateLimitStore({
      maxKeys: 2,
      logger,
      warnIntervalMs: 10_000,
    })
    const l = new RateLimiter({ limitPerMinute: 1, store, clock })
    await l.take('a')
    await l.take('b')

    const refused = await takeTimes(l, 'c', 5)
    clock.advance(9_999)
    await l.take('d')
    clock.advance(1)
    await l.take('e')

    expect(refused.every((d) => !d.allowed)).toBe(true)
    expect(refused[0]).toEqual({
      allowed: false,
      limit: 1,
      remaining: 0,
      resetSeconds: 60,
      retryAfterSeconds: 60,
    })
    expect(warnings).toEqual([
      { event: 'rate_limit.store_full', fields: { max_keys: 2, refused: 1 } },
      { event: 'rate_limit.store_full', fields: { max_keys: 2, refused: 6 } },
    ])
    expect(store.size).toBe(2)
  })

  it('says which refusals are the cap and which are the key’s own limit', async () => {
    const clock = new ManualClock()
    const store = new MemoryRateLimitStore({ maxKeys: 1 })
    const shape = { capacity: MINUTE_MS, refillPerMs: 1, cost: MINUTE_MS }

    const first = await store.take('a', shape, clock.now())
    const again = await store.take('a', shape, clock.now())
    const other = await store.take('b', shape, clock.now())

    expect(first).toEqual({ allowed: true, level: 0, storeFull: false })
    expect(again).toEqual({ allowed: false, level: 0, storeFull: false })
    expect(other).toEqual({ allowed: false, level: 0, storeFull: true })
  })

  it('makes room as soon as the busy bucket that refills first is full', async () => {
    const clock = new ManualClock()
    const store = new MemoryRateLimitStore({ maxKeys: 2 })
    const shape = { capacity: 2 * MINUTE_MS, refillPerMs: 2, cost: MINUTE_MS }
    await store.take('slow', shape, clock.now())
    await store.take('slow', shape, clock.now())
    await store.take('fast', shape, clock.now())

    // 'fast' lacks one token (30 s); 'slow' lacks two (60 s).
    clock.advance(29_999)
    const early = await store.take('new', shape, clock.now())
    clock.advance(1)
    const onTime = await store.take('new', shape, clock.now())
    const slow = await store.take('slow', shape, clock.now())

    expect(early.storeFull).toBe(true)
    expect(onTime).toEqual({
      allowed: true,
      level: MINUTE_MS,
      storeFull: false,
    })
    // 'slow' kept its state: one token back after 30 s, now taken.
    expect(slow).toEqual({ allowed: true, level: 0, storeFull: false })
  })

  it.each([
    [{ maxKeys: 0 }, /maxKeys .* got 0/],
    [{ maxKeys: 2.5 }, /maxKeys .* got 2.5/],
    [{ maxKeys: 1e9 }, /maxKeys .* got 1000000000/],
    [{ warnIntervalMs: -1 }, /warnIntervalMs .* got -1/],
    [{ warnIntervalMs: Number.NaN }, /warnIntervalMs .* got NaN/],
  ])(
    'refuses options %j with a RangeError naming the option',
    (options, message) => {
      expect(() => new MemoryRateLimitStore(options)).toThrow(RangeError)
      expect(() => new MemoryRateLimitStore(options)).toThrow(message)
    },
  )
})

describe('IndexedMinHeap', () => {
  it('pops in priority order after random pushes and priority changes', () => {
    const random = seededRandom(7)
    const heap = new IndexedMinHeap<{ p: number; heapIndex: number }>(
      (item) => item.p,
    )
    const items = Array.from({ length: 500 }, () => ({
      p: random(),
      heapIndex: -1,
    }))
    items.forEach((item) => heap.push(item))

    for (let i = 0; i < 2_000; i += 1) {
      const item = items[Math.floor(random() * items.length)]!
      item.p = random()
      heap.update(item)
    }
    const popped: number[] = []
    for (let top = heap.pop(); top !== undefined; top = heap.pop()) {
      popped.push(top.p)
    }

    expect(popped).toEqual(items.map((item) => item.p).sort((a, b) => a - b))
    expect(heap.size).toBe(0)
  })
})

/** Every span between two allowed requests holds at most N + N·t/60. */
function expectWithinBound(allowedAt: readonly number[], n: number): void {
  for (let i = 0; i < allowedAt.length; i += 1) {
    for (let j = i; j < allowedAt.length; j += 1) {
      const spanMs = (allowedAt[j] ?? 0) - (allowedAt[i] ?? 0)
      const count = j - i + 1
      if (count * MINUTE_MS > n * MINUTE_MS + n * spanMs) {
        throw new Error(`${count} passed in ${spanMs} ms at ${n}/min`)
      }
    }
  }
}
