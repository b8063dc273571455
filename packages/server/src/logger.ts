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
 * and the event's fields. Lines below `level` are dropped.
 */
export function createJsonLogger(
  level: LogLevel,
  sink: LogSink = (line) => process.stdout.write(line),
): Logger {
  const min = RANK[level]
  const write = (at: LogLevel) => (event: string, fields?: LogFields) => {
    if (RANK[at] < min) return
    const record = {
      time: new Date().toISOString(),
      level: at,
      event,
      ...fields,
    }
    sink(`${safeStringify(record)}\n`)
  }
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  }
}

function safeStringify(record: Record<string, unknown>): string {
  try {
    return JSON.stringify(record)
  } catch {
    return JSON.stringify({
      time: record.time,
      level: record.level,
      event: record.event,
      note: 'fields could not be serialized',
    })
  }
}
