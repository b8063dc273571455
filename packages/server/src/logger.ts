import { writeSync } from 'node:fs'
import type { LogFields, Logger } from '@parley/core'
import type { LogLevel } from './config.js'

const RANK: Readonly<Record<LogLevel, number>> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
}

/** Where log lines go; one string per line, newline included. */
export type LogSink = (line: string) => void

/**
 * A logger that writes one JSON object per line: `time`, `level`, `event`
 * and the event's fields. Lines below `level` are dropped. Without a sink
 * the lines go to standard output, written once per event-loop turn and
 * at the latest when the process exits.
 */
export function createJsonLogger(
  level: LogLevel,
  sink: LogSink = stdoutSink(),
): Logger {
  const min = RANK[level]
  const clock = lineClock()
  const write = (at: LogLevel) => {
    // Up to the event name, a line differs from the others of its level
    // only by its time: the rest is built once here, not per line.
    const levelPart = `","level":"${at}","event":`
    return (event: string, fields?: LogFields) => {
      if (RANK[at] < min) return
      const time = clock()
      if (fields !== undefined && namesLeadingKey(fields)) {
        sink(spreadLine({ time, level: at, event, ...fields }))
      } else {
        sink(`{"time":"${time}${levelPart}${lineEnd(event, fields)}`)
      }
    }
  }
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  }
}

// A field named like a leading key replaces it (as in a spread), which the
// concatenation of lineEnd cannot do.
function namesLeadingKey(fields: LogFields): boolean {
  return 'time' in fields || 'level' in fields || 'event' in fields
}

// The line from the event name on, `"event",...fields}` and the newline,
// with the fields stringified once.
function lineEnd(event: string, fields: LogFields | undefined): string {
  const name = JSON.stringify(event)
  if (fields === undefined) return `${name}}\n`
  let text: string
  try {
    text = JSON.stringify(fields)
  } catch {
    return `${name},"note":"fields could not be serialized"}\n`
  }
  return text === '{}' ? `${name}}\n` : `${name},${text.slice(1)}\n`
}

function spreadLine(record: Record<string, unknown>): string {
  try {
    return `${JSON.stringify(record)}\n`
  } catch {
    const { time, level, event } = record
    const note = 'fields could not be serialized'
    return `${JSON.stringify({ time, level, event, note })}\n`
  }
}

// ISO-8601 time of now; many lines share a millisecond, and then the string.
function lineClock(): () => string {
  let lastMs = Number.NaN
  let lastText = ''
  return () => {
    const now = Date.now()
    if (now !== lastMs) {
      lastMs = now
      lastText = new Date(now).toISOString()
    }
    return lastText
  }
}

/** Flush lines waiting when the buffer passes this many characters. */
const FLUSH_AT_CHARS = 64 * 1024
/** On exit, give up on a standard output that takes nothing for this long. */
const EXIT_STALL_MS = 2000
/** Between two retries of a full standard output, in ms. */
const RETRY_MS = 10

let shared: LogSink | undefined

/**
 * The default sink: lines collected during one event-loop turn go to
 * standard output (file descriptor 1) in one synchronous write when the
 * turn ends (or as soon as 64 KiB are waiting), in the order they were
 * logged. Every way the process exits but a signal it does not handle
 * (SIGKILL) runs its `exit` event, which writes what is left: after
 * `process.exit`, the graceful shutdown, an uncaught exception or an
 * unhandled rejection, no line is lost.
 *
 * A standard output that is full (a non-blocking pipe whose reader lags)
 * keeps the rest for a later retry, as Node's own stream would; at exit it
 * is waited for, up to 2 s without progress. A standard output whose reader
 * is gone (EPIPE) drops the lines from then on, said once on standard error:
 * the server keeps serving instead of dying of the write error.
 */
export function stdoutSink(): LogSink {
  shared ??= createFdSink(1)
  return shared
}

function createFdSink(fd: number): LogSink {
  let waiting = ''
  // Bytes of a write the descriptor took only in part, sent before `waiting`.
  let unsent: Buffer | undefined
  let scheduled = false
  let closed = false

  const send = (untilDone: boolean): void => {
    scheduled = false
    if (closed) return
    if (waiting.length > 0) {
      const next = Buffer.from(waiting)
      unsent = unsent ? Buffer.concat([unsent, next]) : next
      waiting = ''
    }
    let stalledSince: number | undefined
    while (unsent && !closed) {
      const written = writeOnce(fd, unsent)
      if (written === 'closed') {
        closed = true
        unsent = undefined
        noteClosed()
        return
      }
      if (written >= unsent.length) {
        unsent = undefined
        return
      }
      unsent = written > 0 ? unsent.subarray(written) : unsent
      if (!untilDone) {
        schedule(RETRY_MS)
        return
      }
      // Exiting: nothing runs after this, so wait here for the reader.
      if (written > 0) stalledSince = undefined
      stalledSince ??= Date.now()
      if (Date.now() - stalledSince > EXIT_STALL_MS) return
      pause(RETRY_MS)
    }
  }

  const schedule = (delayMs: number): void => {
    if (scheduled) return
    scheduled = true
    if (delayMs === 0) setImmediate(() => send(false))
    else setTimeout(() => send(false), delayMs)
  }

  process.on('exit', () => send(true))

  return (line) => {
    if (closed) return
    waiting += line
    if (waiting.length >= FLUSH_AT_CHARS && !unsent) send(false)
    else schedule(0)
  }
}

// Bytes written (0 when the descriptor is full), or 'closed' when its
// reader is gone. Any other failure is treated as a closed output too:
// there is nowhere else to put the lines.
function writeOnce(fd: number, bytes: Buffer): number | 'closed' {
  try {
    return writeSync(fd, bytes)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
      return 0
    }
    return 'closed'
  }
}

function noteClosed(): void {
  try {
    writeSync(2, 'parley: standard output is closed; log lines are dropped\n')
  } catch {
    // Standard error is gone too: nothing left to tell.
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}
