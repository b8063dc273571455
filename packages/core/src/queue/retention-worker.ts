import type { ResolvedConfig } from '../config.js'
import { type PruneCounts, pruneExpired } from '../store/retention.js'
import type { ParleyDatabase } from '../store/schema.js'
import type { Clock } from '../util/clock.js'
import type { Logger } from '../util/logger.js'
import { WorkerLoop } from './worker-loop.js'

/** What the retention worker needs. */
export interface RetentionWorkerDeps {
  readonly db: ParleyDatabase
  readonly config: ResolvedConfig
  readonly clock: Clock
  readonly logger: Logger
}

const DAY_MS = 86_400_000

/**
 * Prunes what DESIGN section 8 lets go after `retentionDays`, one small
 * batch per table at a time: while a batch comes back full it goes on at
 * once, otherwise it looks again after `retentionIntervalMs`. Every
 * instance on a database may run it; their deletes never conflict.
 */
export class RetentionWorker {
  private readonly loop: WorkerLoop

  constructor(private readonly deps: RetentionWorkerDeps) {
    this.loop = new WorkerLoop({
      name: 'retention',
      pollIntervalMs: deps.config.retentionIntervalMs,
      step: () => this.step(),
      logger: deps.logger,
    })
  }

  /** Starts pruning. */
  start(): void {
    this.loop.start()
  }

  /** Stops after the statement in hand. */
  stop(): Promise<void> {
    return this.loop.stop()
  }

  /** Prunes one batch per table; true when any batch was full. */
  async step(): Promise<boolean> {
    const { config, clock, db } = this.deps
    const counts = await pruneExpired(db.kysely, {
      now: clock.now(),
      retentionMs: config.retentionDays * DAY_MS,
      batchSize: config.retentionBatchSize,
    })
    this.report(counts)
    return Object.values(counts).some(
      (count) => count >= config.retentionBatchSize,
    )
  }

  private report(counts: PruneCounts): void {
    const total = Object.values(counts).reduce((sum, count) => sum + count, 0)
    if (total === 0) return
    this.deps.logger.info('retention.pruned', { ...counts, total })
  }
}
