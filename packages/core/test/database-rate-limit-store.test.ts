/**
 * The database rate-limit store, on both dialects: it answers exactly as
 * the memory store for any sequence of takes (same whole-unit arithmetic),
 * and concurrent takes through separate connections (two pools on
 * Postgres, two connections to one file on SQLite) never let more through
 * than the bucket holds.
 */
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { migrateToLatest } from '../src/store/migrations.js'
import type { ParleyDatabase } from '../src/store/schema.js'
import { DatabaseRateLimitStore } from '../src/resilience/database-rate-limit-store.js'
import { MemoryRateLimitStore } from '../src/resilience/memory-rate-limit-store.js'
import type { BucketShape } from '../src/resilience/rate-limit-store.js'
import { RateLimiter } from '../src/resilience/rate-limiter.js'
import {
  DIALECT,
  DIALECT_LABEL,
  ManualClock,
  START,
  testDb,
  testStore,
} from './support.js'

const MINUTE_MS = 60_000

/** The shape RateLimiter gives a limit of `n` a minute. */
function shapeOf(n: number): BucketShape {
  return { capacity: n * MINUTE_MS, refillPerMs: n, cost: MINUTE_MS }
}

const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function database(): Promise<ParleyDatabase> {
  const db = await testDb()
  cleanups.push(() => db.close())
  return db
}

describe(`DatabaseRateLimitStore on ${DIALECT_LABEL}`, () => {
  it('lets a new key burst the whole bucket, then refuses it', async () => {
    const store = new DatabaseRateLimitStore({ db: await database() })
    const shape = shapeOf(3)

    const takes = []
    for (let i = 0; i < 4; i += 1)
      takes.push(await store.take('k', shape, START))

    expect(takes.map((t) => t.allowed)).toEqual([true, true, true, false])
    expect(takes.map((t) => t.level)).toEqual([120_000, 60_000, 0, 0])
    expect(takes.every((t) => !t.storeFull)).toBe(true)
  })

  it('refills by the limit in units per millisecond, never above the capacity', async () => {
    const store = new DatabaseRateLimitStore({ db: await database() })
    const shape = shapeOf(60)
    for (let i = 0; i < 60; i += 1) await store.take('k', shape, START)

    const early = await store.take('k', shape, START + 999)
    const onTime = await store.take('k', shape, START + 1000)
    const muchLater = await store.take('k', shape, START + 365 * 86_400_000)

    expect(early).toEqual({ allowed: false, level: 59_940, storeFull: false })
    expect(onTime).toEqual({ allowed: true, level: 0, storeFull: false })
    expect(muchLater.level).toBe(shape.capacity - shape.cost)
  })

  it('adds nothing for a clock that went back, and keeps the later time', async () => {
    const store = new DatabaseRateLimitStore({ db: await database() })
    const shape = shapeOf(1)
    await store.take('k', shape, START)

    const back = await store.take('k', shape, START - 30_000)
    const halfway = await store.take('k', shape, START + 30_000)

    expect(back).toEqual({ allowed: false, level: 0, storeFull: false })
    expect(halfway).toEqual({ allowed: false, level: 30_000, storeFull: false })
  })

  it('keeps the buckets of different keys apart', async () => {
    const store = new DatabaseRateLimitStore({ db: await database() })
    const shape = shapeOf(1)

    expect((await store.take('a', shape, START)).allowed).toBe(true)
    expect((await store.take('b', shape, START)).allowed).toBe(true)
    expect((await store.take('a', shape, START)).allowed).toBe(false)
  })

  it('answers a RateLimiter exactly as the memory store does, for any sequence of takes', async () => {
    const db = await database()
    let run = 0
    const step = fc.record({
      key: fc.constantFrom('a', 'b', 'c'),
      advanceMs: fc.oneof(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 120_000 }),
      ),
      limit: fc.constantFrom(1, 7, 60, 1_000_000_000),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        run += 1
        const clock = new ManualClock()
        const memory = new MemoryRateLimitStore()
        const stored = new DatabaseRateLimitStore({ db })
        for (const { key, advanceMs, limit } of steps) {
          clock.advance(advanceMs)
          // Each run gets keys of its own in the shared table.
          const scoped = `${run}:${limit}:${key}`
          const options = { limitPerMinute: limit, clock }
          const expected = await new RateLimiter({
            ...options,
            store: memory,
          }).take(scoped)
          const actual = await new RateLimiter({
            ...options,
            store: stored,
          }).take(scoped)
          expect(actual).toEqual(expected)
        }
      }),
      { numRuns: 40 },
    )
  })

  // better-sqlite3 is synchronous: a second connection in the same
  // process waits for the write lock by blocking the thread that would
  // release it, so on SQLite the concurrent takes share one connection
  // (several processes on one file serialize on the lock as intended).
  const connections = DIALECT === 'postgres' ? 2 : 1

  const through = connections === 1 ? 'one connection' : 'two pools'

  it(`lets through exactly the burst when 80 takes race through ${through}`, async () => {
    const shared = await testStore()
    const dbs = Array.from({ length: connections }, () => shared.open())
    cleanups.push(async () => {
      for (const db of dbs) await db.close()
      await shared.remove()
    })
    await migrateToLatest(dbs[0]!)
    const stores = dbs.map((db) => new DatabaseRateLimitStore({ db }))
    const shape = shapeOf(25)

    const takes = await Promise.all(
      Array.from({ length: 80 }, (_, i) =>
        stores[i % stores.length]!.take('sender:+18045551234', shape, START),
      ),
    )

    const allowed = takes.filter((t) => t.allowed)
    const refused = takes.filter((t) => !t.allowed)
    expect(allowed).toHaveLength(25)
    expect(new Set(allowed.map((t) => t.level)).size).toBe(25)
    // A refusal never reports a whole request left.
    expect(refused.every((t) => t.level < shape.cost)).toBe(true)
  })

  it('refuses a db that is not a ParleyDatabase, naming the option', () => {
    expect(
      () => new DatabaseRateLimitStore({ db: {} as ParleyDatabase }),
    ).toThrow(/db must be a ParleyDatabase/)
  })
})
