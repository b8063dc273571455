import { type RawBuilder, sql } from 'kysely'
import type { ParleyDatabase } from '../store/schema.js'
import type {
  BucketShape,
  BucketTake,
  RateLimitStore,
} from './rate-limit-store.js'

/** Options of a {@link DatabaseRateLimitStore}. */
export interface DatabaseRateLimitStoreOptions {
  /**
   * The database whose `rate_limit_buckets` table holds the buckets
   * (created by the migrations). Every Parley instance that shares it
   * shares the limits.
   */
  readonly db: ParleyDatabase
}

/**
 * A {@link RateLimitStore} in the database, so that a limit holds across
 * every instance that shares it. Each `take` refills and takes in one
 * atomic step, with the same whole-unit arithmetic as the memory store:
 *
 * - on Postgres, one `INSERT … ON CONFLICT DO UPDATE … RETURNING`
 *   statement computes the refilled level and the take in SQL, under the
 *   row lock the upsert holds, so concurrent takes from several instances
 *   queue on the row and never read a level another take has changed;
 * - on SQLite, the same upsert inside a write transaction, which holds the
 *   database's write lock.
 *
 * A bucket that does not exist is full, so a key is stored only from its
 * first request on; the clock is read in whole milliseconds.
 *
 * Rows idle for longer than the retention window (`retentionDays`) are
 * deleted by the retention worker: such a bucket has refilled, and
 * answers as a missing row does.
 *
 * @example
 * ```ts
 * const parley = await createParley({
 *   db,
 *   providers,
 *   rateLimitStore: new DatabaseRateLimitStore({ db }),
 * })
 * ```
 */
export class DatabaseRateLimitStore implements RateLimitStore {
  private readonly db: ParleyDatabase

  constructor(options: DatabaseRateLimitStoreOptions) {
    checkDatabase(options?.db)
    this.db = options.db
  }

  /** {@inheritDoc RateLimitStore.take} */
  take(key: string, shape: BucketShape, now: number): Promise<BucketTake> {
    const take = bucketTake(key, shape, Math.floor(now), this.db.dialect)
    return this.db.dialect === 'postgres'
      ? this.takeInOneStatement(take)
      : this.takeInTransaction(take)
  }

  // The second branch runs only when the upsert refused, to report the
  // refilled level (for Retry-After). It reads the statement's snapshot,
  // which may predate a take another instance committed while this one
  // waited for the row lock; the level it reports is therefore capped
  // below one request, so a refusal never claims one is left.
  private async takeInOneStatement(take: TakeSql): Promise<BucketTake> {
    const { rows } = await sql<LevelRow>`
      with taken as (${take.upsert})
      select level, 1 as allowed from taken
      union all
      select ${take.refusedLevel} as level, 0 as allowed
        from rate_limit_buckets
        where key = ${take.key} and not exists (select 1 from taken)
    `.execute(this.db.kysely)
    return toBucketTake(rows[0])
  }

  private takeInTransaction(take: TakeSql): Promise<BucketTake> {
    return this.db.writeTransaction(async (trx) => {
      const taken = await take.upsert.execute(trx)
      if (taken.rows[0]) return toBucketTake({ ...taken.rows[0], allowed: 1 })

      const refused = await sql<LevelRow>`
        select ${take.refusedLevel} as level, 0 as allowed
          from rate_limit_buckets where key = ${take.key}
      `.execute(trx)
      return toBucketTake(refused.rows[0])
    })
  }
}

interface LevelRow {
  level: number | string
  allowed: number | boolean
}

/** The SQL of one take, for either dialect. */
interface TakeSql {
  readonly key: string
  /**
   * Inserts a full bucket less one request, or refills the stored one and
   * takes a request from it; returns the new level, and no row when the
   * bucket was short (the row is then left as it was: refilling is the
   * same whether it is done now or later).
   */
  readonly upsert: RawBuilder<{ level: number | string }>
  /** The refilled level of the stored row, below one request. */
  readonly refusedLevel: RawBuilder<number>
}

function bucketTake(
  key: string,
  shape: BucketShape,
  now: number,
  dialect: ParleyDatabase['dialect'],
): TakeSql {
  const { greatest, least } = MIN_MAX[dialect]
  const cost = integer(shape.cost)
  const at = integer(now)
  const level = refilledLevel(shape, at, dialect)
  const upsert = sql<{ level: number | string }>`
    insert into rate_limit_buckets (key, level, updated_at_ms)
    values (${key}, ${integer(shape.capacity - shape.cost)}, ${at})
    on conflict (key) do update
      set level = ${level} - ${cost},
          updated_at_ms = ${greatest}(rate_limit_buckets.updated_at_ms, ${at})
      where ${level} >= ${cost}
    returning level
  `
  const refusedLevel = sql<number>`${least}(${level}, ${cost} - 1)`
  return { key, upsert, refusedLevel }
}

/**
 * The stored bucket refilled up to `now`, as the memory store computes it:
 * `capacity - max(0, missing - elapsed * refillPerMs)`. The elapsed time
 * is capped at the time any bucket takes to refill, which changes no
 * answer and keeps the product inside 64-bit integers however long a
 * bucket stayed idle. A clock that went back adds nothing.
 */
function refilledLevel(
  shape: BucketShape,
  now: RawBuilder<number>,
  dialect: ParleyDatabase['dialect'],
): RawBuilder<number> {
  const { greatest, least } = MIN_MAX[dialect]
  const capacity = integer(shape.capacity)
  const refill = integer(shape.refillPerMs)
  const fullAfter = integer(Math.ceil(shape.capacity / shape.refillPerMs))
  const elapsed = sql`${least}(${greatest}(0, ${now} - rate_limit_buckets.updated_at_ms), ${fullAfter})`
  const missing = sql`${capacity} - rate_limit_buckets.level`
  return sql<number>`(${capacity} - ${greatest}(0, ${missing} - ${elapsed} * ${refill}))`
}

// Postgres has greatest()/least(); SQLite's max()/min() take several
// arguments and do the same.
const MIN_MAX = {
  postgres: { greatest: sql.raw('greatest'), least: sql.raw('least') },
  sqlite: { greatest: sql.raw('max'), least: sql.raw('min') },
} as const

// Parameters arrive untyped on Postgres: say they are 64-bit integers.
function integer(value: number): RawBuilder<number> {
  return sql<number>`cast(${value} as bigint)`
}

function toBucketTake(row: LevelRow | undefined): BucketTake {
  // No row at all: the bucket was short, and the row this statement's
  // snapshot could see was created after it began. Report it empty.
  if (row === undefined) return { allowed: false, level: 0, storeFull: false }
  const allowed = row.allowed === 1 || row.allowed === true
  return { allowed, level: Math.max(0, Number(row.level)), storeFull: false }
}

function checkDatabase(db: unknown): void {
  const candidate = db as Partial<ParleyDatabase> | undefined
  if (candidate?.kysely && typeof candidate.writeTransaction === 'function') {
    return
  }
  throw new TypeError(
    `DatabaseRateLimitStore: db must be a ParleyDatabase (openSqlite or openPostgres), got ${String(db)}`,
  )
}
