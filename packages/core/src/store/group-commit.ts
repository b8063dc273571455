import { setImmediate } from 'node:timers'
import type { Kysely } from 'kysely'
import type { ParleyDatabase, ParleySchema } from './schema.js'
import { isCommittedNotDurable } from './wal-sync.js'

/** A unit of writes that must commit together. */
export type WriteWork<T> = (trx: Kysely<ParleySchema>) => Promise<T>

interface Pending {
  readonly work: WriteWork<unknown>
  readonly lockKey: string
  readonly alone: boolean
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
}

/**
 * Group commit: writes submitted together share one transaction, and each
 * caller's promise settles only after that transaction committed. A commit
 * made durable (fsync) costs the same for one write as for hundreds, so
 * this is what lets durable writes keep up with a busy server.
 *
 * Writes submitted while a commit runs form the next batch. When a batch
 * fails, its writes are retried one transaction each, so one bad write
 * fails alone. Every unit of work must therefore be safe to run again
 * after a rollback (pure database writes).
 */
export class GroupCommitter {
  private queue: Pending[] = []
  private readonly inFlight = new Set<Promise<void>>()
  private scheduled = false
  // How many batches may be under way at once. SQLite runs one transaction
  // at a time on its single connection, and a commit there resolves only
  // once an fsync of the WAL made off the event loop completed: the next
  // batch may commit while that fsync runs (its own callers still wait for
  // the fsync that covers their commit). On Postgres two batches would
  // hold two pool connections and contend for the same rows: one at a time.
  private readonly depth: number

  constructor(
    private readonly db: ParleyDatabase,
    private readonly maxBatch: number,
  ) {
    this.depth = db.dialect === 'sqlite' ? 2 : 1
  }

  /**
   * Runs `work` in the next group commit; resolves after the commit.
   *
   * `lockKey` names the contended row the work writes (its conversation,
   * its idempotency key, its webhook's provider id), ranked by kind as
   * lock-keys.ts says. A batch runs its
   * writes in the order of their keys, so that two transactions (of two
   * instances on one Postgres) that touch the same rows lock them in the
   * same order and cannot deadlock. Work without a key runs first.
   *
   * Work that locks several contended rows (in an order of its own, such
   * as a request's delivery reports) is submitted `alone`: one key cannot
   * order it against the rest of a batch, so on Postgres it commits in a
   * transaction of its own. On SQLite, which runs one transaction at a
   * time, nothing can deadlock and it joins a batch as any other.
   */
  submit<T>(
    work: WriteWork<T>,
    lockKey = '',
    options: { alone?: boolean } = {},
  ): Promise<T> {
    const alone = options.alone === true && this.db.dialect === 'postgres'
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        work,
        lockKey,
        alone,
        resolve: resolve as (value: unknown) => void,
        reject,
      })
      this.schedule()
    })
  }

  /** Resolves once every write submitted so far has settled. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0 || this.scheduled || this.queue.length > 0) {
      if (this.inFlight.size > 0) await Promise.all(this.inFlight)
      else await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight.size >= this.depth) return
    this.scheduled = true
    // Wait for the rest of this turn of the event loop: requests parsed in
    // the same I/O phase join the batch.
    setImmediate(() => {
      this.scheduled = false
      this.startBatches()
    })
  }

  // Writes submitted while the batches under way commit form the next
  // batch, which starts as soon as one of them settles.
  private startBatches(): void {
    while (this.queue.length > 0 && this.inFlight.size < this.depth) {
      const batch = this.queue.splice(0, this.batchSize())
      const done: Promise<void> = this.commit(batch).finally(() => {
        this.inFlight.delete(done)
        this.startBatches()
      })
      this.inFlight.add(done)
    }
  }

  // How many of the queued writes the next batch takes: up to maxBatch,
  // ending before the first that must commit alone, or that one alone.
  private batchSize(): number {
    if (this.queue[0]!.alone) return 1
    const limit = Math.min(this.queue.length, this.maxBatch)
    for (let size = 1; size < limit; size += 1) {
      if (this.queue[size]!.alone) return size
    }
    return limit
  }

  private async commit(batch: Pending[]): Promise<void> {
    try {
      const results = await this.db.writeTransaction(async (trx) => {
        const out: unknown[] = []
        for (const index of lockOrder(batch)) {
          out[index] = await batch[index]!.work(trx)
        }
        return out
      })
      batch.forEach((item, index) => item.resolve(results[index]))
    } catch (error) {
      // Committed, but not made durable: running the writes again would
      // commit them twice. Each caller learns that its write's fate is
      // unknown.
      if (batch.length === 1 || isCommittedNotDurable(error)) {
        for (const item of batch) item.reject(error)
      } else await this.commitOneByOne(batch)
    }
  }

  private async commitOneByOne(batch: Pending[]): Promise<void> {
    for (const item of batch) {
      try {
        item.resolve(await this.db.writeTransaction(item.work))
      } catch (error) {
        item.reject(error)
      }
    }
  }
}

// The batch's positions sorted by lock key (by code unit), ties kept in
// arrival order.
function lockOrder(batch: readonly Pending[]): number[] {
  return batch
    .map((_, index) => index)
    .sort((a, b) => {
      const x = batch[a]!.lockKey
      const y = batch[b]!.lockKey
      return x < y ? -1 : x > y ? 1 : a - b
    })
}
