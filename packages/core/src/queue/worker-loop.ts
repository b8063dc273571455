import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/logger.js'

/** Options of a {@link WorkerLoop}. */
export interface WorkerLoopOptions {
  /** Name used in log events. */
  readonly name: string
  /** How long to wait for a wake-up when there was nothing to do, in ms. */
  readonly pollIntervalMs: number
  /**
   * Does one round of work. Resolves `true` when more work is probably
   * waiting (run again at once), `false` to wait for a wake-up or the poll.
   */
  readonly step: () => Promise<boolean>
  readonly logger: Logger
  /**
   * Now, in ms, for spacing out failure lines.
   * @default Date.now
   */
  readonly now?: () => number
}

// While steps keep failing (a database outage), one `worker.step_failed`
// line at most this often, with the number of failures it stands for.
const FAILURE_LOG_INTERVAL_MS = 10_000

/**
 * Runs `step` over and over: at once while it finds work, otherwise after
 * the poll interval or as soon as `wake` is called. A failing step is
 * logged and retried after the poll interval; it never ends the loop.
 */
export class WorkerLoop {
  private running = false
  private loop: Promise<void> | undefined
  private wakeUp: (() => void) | undefined
  private woken = false
  // Failures since the last step that succeeded, and since the last line.
  private failures = 0
  private unlogged = 0
  private lastLoggedAt = 0

  constructor(private readonly options: WorkerLoopOptions) {}

  /** Starts the loop (once). */
  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  /** Ends the wait of an idle loop, so new work starts at once. */
  wake(): void {
    this.woken = true
    this.wakeUp?.()
  }

  /** Stops after the current step; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.running = false
    this.wake()
    await this.loop
  }

  private async run(): Promise<void> {
    while (this.running) {
      const more = await this.safeStep()
      if (!more && this.running) await this.idle()
    }
  }

  private async safeStep(): Promise<boolean> {
    try {
      const more = await this.options.step()
      this.recovered()
      return more
    } catch (error) {
      this.failed(error)
      return false
    }
  }

  // The first failure is logged at once, later ones at most once per
  // FAILURE_LOG_INTERVAL_MS, each line counting the failures since the
  // previous one.
  private failed(error: unknown): void {
    const now = (this.options.now ?? Date.now)()
    this.failures += 1
    this.unlogged += 1
    const first = this.failures === 1
    if (!first && now - this.lastLoggedAt < FAILURE_LOG_INTERVAL_MS) return
    this.options.logger.error('worker.step_failed', {
      worker: this.options.name,
      error: errorMessage(error),
      failures: this.unlogged,
    })
    this.unlogged = 0
    this.lastLoggedAt = now
  }

  private recovered(): void {
    if (this.failures === 0) return
    this.options.logger.info('worker.step_recovered', {
      worker: this.options.name,
      failures: this.failures,
    })
    this.failures = 0
    this.unlogged = 0
  }

  private idle(): Promise<void> {
    if (this.woken) {
      this.woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.options.pollIntervalMs)
      const self = this
      function done(): void {
        clearTimeout(timer)
        self.wakeUp = undefined
        self.woken = false
        resolve()
      }
      this.wakeUp = done
    })
  }
}
