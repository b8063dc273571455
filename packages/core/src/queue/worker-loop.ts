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
}

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
      return await this.options.step()
    } catch (error) {
      this.options.logger.error('worker.step_failed', {
        worker: this.options.name,
        error: errorMessage(error),
      })
      return false
    }
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
