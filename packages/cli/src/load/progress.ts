import type { Colors } from '../output.js'
import type { ServerProgress } from './await-server.js'
import type { RequestTally } from './send-requests.js'

/** Where and how often `parley load` reports progress. */
export interface ProgressOptions {
  /** Writes to standard error. */
  write: (text: string) => void
  /**
   * True on a terminal: one line redrawn in place, with a bar; else a plain
   * line every `intervalMs`.
   */
  terminal: boolean
  colors: Colors
  /** A monotonic clock in milliseconds. */
  now: () => number
  /** @default 100 on a terminal, 1000 otherwise */
  intervalMs?: number
}

const barWidth = 30

/**
 * Reports the two phases of a load run on standard error: requests sent,
 * then the server catching up. Updates are throttled; `finish` always
 * writes the last state of a phase.
 */
export class ProgressReporter {
  readonly #options: ProgressOptions
  readonly #intervalMs: number
  #lastWriteMs = -Infinity
  #lastLine = ''
  #phaseStartMs = 0

  constructor(options: ProgressOptions) {
    this.#options = options
    this.#intervalMs = options.intervalMs ?? (options.terminal ? 100 : 1000)
  }

  /** Marks the start of a phase, for its elapsed time. */
  begin(): void {
    this.#phaseStartMs = this.#options.now()
    this.#lastWriteMs = -Infinity
  }

  /** Reports requests sent so far (throttled). */
  requests(tally: RequestTally, count: number): void {
    if (!this.#due()) return
    this.#show(this.#requestsLine(tally, count), tally.finished / count)
  }

  /** Reports how far the server got (throttled). */
  server(progress: ServerProgress): void {
    if (!this.#due()) return
    const expected = progress.dispatchExpected + progress.threadExpected
    const done = progress.dispatchDone + progress.threadDone
    this.#show(this.#serverLine(progress), expected === 0 ? 1 : done / expected)
  }

  /** Writes the last state of the phase and ends its line. */
  finishRequests(tally: RequestTally, count: number): void {
    this.#lastWriteMs = -Infinity
    this.#show(this.#requestsLine(tally, count), tally.finished / count)
    if (this.#options.terminal) this.#options.write('\n')
  }

  /** Writes the last state of the server phase and ends its line. */
  finishServer(progress: ServerProgress): void {
    this.#lastWriteMs = -Infinity
    this.server(progress)
    if (this.#options.terminal) this.#options.write('\n')
  }

  #due(): boolean {
    const now = this.#options.now()
    if (now - this.#lastWriteMs < this.#intervalMs) return false
    this.#lastWriteMs = now
    return true
  }

  #elapsedSeconds(): number {
    return (this.#options.now() - this.#phaseStartMs) / 1000
  }

  #requestsLine(tally: RequestTally, count: number): string {
    const seconds = this.#elapsedSeconds()
    const rate = seconds > 0 ? tally.finished / seconds : 0
    const failed = tally.rejected + tally.noAnswer
    const { colors } = this.#options
    const failures =
      failed === 0 ? '0 rejected' : colors.red(`${failed} rejected`)
    return (
      `requests ${tally.finished}/${count}, ${tally.accepted} accepted, ` +
      `${failures}, ${rate.toFixed(0)} req/s, ${seconds.toFixed(1)} s`
    )
  }

  #serverLine(progress: ServerProgress): string {
    return (
      `server: dispatched ${progress.dispatchDone}/${progress.dispatchExpected}, ` +
      `threaded ${progress.threadDone}/${progress.threadExpected}, ` +
      `${this.#elapsedSeconds().toFixed(1)} s`
    )
  }

  #show(line: string, share: number): void {
    const { write, terminal, colors } = this.#options
    if (line === this.#lastLine) return
    this.#lastLine = line
    if (!terminal) {
      write(`${line}\n`)
      return
    }
    const filled = Math.round(Math.min(1, Math.max(0, share)) * barWidth)
    const bar =
      colors.green('█'.repeat(filled)) +
      colors.dim('░'.repeat(barWidth - filled))
    const percent = `${Math.floor(share * 100)}%`.padStart(4)
    // Carriage return and erase-line redraw the line in place.
    write(`\r\u001b[2K${bar} ${percent} ${line}`)
  }
}
