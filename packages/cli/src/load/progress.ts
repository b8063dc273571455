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
  /**
   * The terminal's width in columns, read at each redraw (it may change):
   * the line is cut to fit, since a wrapped line cannot be redrawn in place.
   * Unknown: the line is not cut.
   */
  columns?: () => number | undefined
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
    const { colors } = this.#options
    const rejected =
      tally.rejected === 0
        ? '0 rejected'
        : colors.red(`${tally.rejected} rejected`)
    const unanswered =
      tally.noAnswer === 0
        ? ''
        : `, ${colors.red(`${tally.noAnswer} no answer`)}`
    return (
      `requests ${tally.finished}/${count}, ${tally.accepted} accepted, ` +
      `${rejected}${unanswered}, ${rate.toFixed(0)} req/s, ` +
      `${seconds.toFixed(1)} s`
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
    const columns = this.#options.columns?.() ?? Infinity
    const percent = `${Math.floor(share * 100)}%`.padStart(4)
    // The bar shrinks (or goes) before the text is cut; one column stays
    // free, as some terminals wrap when the last one is written.
    const room = columns - 1
    const visible = stripEscapes(line).length
    const width = Math.min(barWidth, room - visible - percent.length - 2)
    const filled = Math.round(Math.min(1, Math.max(0, share)) * width)
    const bar =
      width < 10
        ? ''
        : colors.green('█'.repeat(filled)) +
          colors.dim('░'.repeat(width - filled)) +
          ' '
    const text = fitColumns(
      `${percent} ${line}`,
      room - (bar === '' ? 0 : width + 1),
    )
    // Carriage return and erase-line redraw the line in place.
    write(`\r\u001b[2K${bar}${text}`)
  }
}

// Cuts text with colour escapes to `columns` visible characters (the line
// is ASCII but for its escapes), keeping the escapes and resetting colour.
function fitColumns(text: string, columns: number): string {
  let visible = 0
  let result = ''
  for (const part of text.split(/(\u001b\[[0-9;]*m)/)) {
    if (part.startsWith('\u001b[')) {
      result += part
      continue
    }
    const kept = part.slice(0, Math.max(0, columns - visible))
    visible += kept.length
    result += kept
  }
  return visible < stripEscapes(text).length ? `${result}\u001b[0m` : result
}

function stripEscapes(text: string): string {
  return text.replace(/\u001b\[[0-9;]*m/g, '')
}
