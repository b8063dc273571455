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
      if (fields !== undefined && !fitsLineEnd(fields)) {
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

// Whether lineEnd can splice the fields' JSON after the leading keys: a
// plain object whose JSON is an object and that names no leading key (a
// field named like one replaces it, as in a spread). Anything else an
// embedder passes (an array, null, a number, an object with toJSON) is
// spread into the line instead, so that every line stays one JSON object.
function fitsLineEnd(fields: LogFields): boolean {
  const value: unknown = fields
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false
  return !('time' in value || 'level' in value || 'event' in value)
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
  // A toJSON spread in from the fields would stand for the whole line.
  if (typeof record.toJSON === 'function') delete record.toJSON
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
/**
 * Lines that standard output has not taken yet, at most, in characters;
 * past it new lines are dropped (and counted) until it takes them again.
 */
const MAX_BACKLOG_CHARS = 16 * 1024 * 1024
/** On exit, give up on a standard output that takes nothing for this long. */
const EXIT_STALL_MS = 2000
/** Between two retries of a full standard output, in ms. */
const RETRY_MS = 10

let shared: LogSink | undefined

/**
 * The default sink: lines collected during one event-loop turn go to
 * standard output (file descriptor 1) in one write when the turn ends (or
 * as soon as 64 KiB are waiting), in the order they were logged. Every way
 * the process exits but a signal it does not handle (SIGKILL) runs its
 * `exit` event, which writes what is left: after `process.exit`, the
 * graceful shutdown, an uncaught exception or an unhandled rejection, no
 * line is lost.
 *
 * The writes never wait for the reader: a pipe on standard output is made
 * non-blocking (as Node's own `process.stdout` does), and what a full pipe
 * does not take is kept and retried every 10 ms, up to 16 MiB; lines past
 * that are dropped and counted in a `log.lines_dropped` line once the
 * reader catches up, so that a stalled log collector never stops the
 * server nor fills its memory. At exit the rest is waited for, up to 2 s
 * without progress. A standard output whose reader is gone (EPIPE) drops
 * the lines from then on, said once on standard error: the server keeps
 * serving instead of dying of the write error.
 */
export function stdoutSink(): LogSink {
  if (shared === undefined) {
    // Creating process.stdout makes a pipe on it non-blocking.
    void process.stdout
    shared = createFdSink(1)
  }
  return shared
}

function createFdSink(fd: number): LogSink {
  let waiting = ''
  // Chunks the descriptor has not taken yet, in order, sent before
  // `waiting`; kept as a list so that a retry never copies the backlog.
  const unsent: Buffer[] = []
  let unsentBytes = 0
  let dropped = 0
  let scheduled = false
  let closed = false

  const takeWaiting = (): void => {
    if (waiting.length === 0) return
    const chunk = Buffer.from(waiting)
    unsent.push(chunk)
    unsentBytes += chunk.length
    waiting = ''
  }

  const send = (untilDone: boolean): void => {
    scheduled = false
    if (closed) return
    takeWaiting()
    let stalledSince: number | undefined
    while (unsent.length > 0 && !closed) {
      const chunk = unsent[0]!
      const written = writeOnce(fd, wholeLines(chunk))
      if (written === 'closed') {
        closed = true
        unsent.length = 0
        unsentBytes = 0
        noteClosed()
        return
      }
      unsentBytes -= written
      if (written >= chunk.length) {
        unsent.shift()
        if (unsent.length === 0 && dropped > 0) noteDropped()
        continue
      }
      if (written > 0) {
        unsent[0] = chunk.subarray(written)
        stalledSince = undefined
        continue
      }
      if (!untilDone) {
        schedule(RETRY_MS)
        return
      }
      // Exiting: nothing runs after this, so wait here for the reader.
      stalledSince ??= Date.now()
      if (Date.now() - stalledSince > EXIT_STALL_MS) return
      pause(RETRY_MS)
    }
  }

  // The count of lines dropped while standard output lagged, as a line.
  const noteDropped = (): void => {
    const time = new Date().toISOString()
    const line = `{"time":"${time}","level":"warn","event":"log.lines_dropped","lines":${dropped}}\n`
    dropped = 0
    waiting = line + waiting
    takeWaiting()
  }

  const schedule = (delayMs: number): void => {
    if (scheduled) return
    scheduled = true
    // Never what keeps the process alive: exit writes what is left.
    if (delayMs === 0) setImmediate(() => send(false)).unref()
    else setTimeout(() => send(false), delayMs).unref()
  }

  process.on('exit', () => send(true))

  return (line) => {
    if (closed) return
    if (unsentBytes + waiting.length >= MAX_BACKLOG_CHARS) {
      dropped += 1
      return
    }
    waiting += line
    if (waiting.length >= FLUSH_AT_CHARS && unsent.length === 0) send(false)
    else schedule(0)
  }
}

// A write of at most this many bytes to a pipe is atomic: the pipe takes
// all of it, or (non-blocking and full) none. POSIX's PIPE_BUF: 4096 on
// Linux, where the server runs (POSIX itself promises only 512).
const PIPE_BUF = 4096

// The start of `chunk` (which holds whole lines) to write next: whole
// lines of at most PIPE_BUF bytes together, so that a full pipe never
// takes part of a line and leaves the rest for a write that may never
// come (an exit that gave up on the reader). A single longer line cannot
// be kept whole and goes as it is.
function wholeLines(chunk: Buffer): Buffer {
  if (chunk.length <= PIPE_BUF) return chunk
  const end = chunk.lastIndexOf(0x0a, PIPE_BUF - 1)
  if (end >= 0) return chunk.subarray(0, end + 1)
  const lineEnd = chunk.indexOf(0x0a)
  return lineEnd < 0 ? chunk : chunk.subarray(0, lineEnd + 1)
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
