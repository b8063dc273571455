/** Structured fields of one log event. */
export type LogFields = Readonly<Record<string, unknown>>

/**
 * Where core reports what it does: one event name per call, plus fields.
 * Core never writes to the console; without a logger it is silent.
 */
export interface Logger {
  debug(event: string, fields?: LogFields): void
  info(event: string, fields?: LogFields): void
  warn(event: string, fields?: LogFields): void
  error(event: string, fields?: LogFields): void
}

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
}

/** The message of an unknown thrown value, for logs and `last_error`. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
