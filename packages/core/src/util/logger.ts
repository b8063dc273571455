/** Structured fields of one log event. */
export type LogFields = Readonly<Record<string, unknown>>

/**
 * Where core reports what it does: one event name per call, plus fields.
 * Core never writes to the console; without a logger it is silent.
 */
export interface Logger {
  /** Detail for following one job, e.g. `dispatch.attempt_started`. */
  debug(event: string, fields?: LogFields): void
  /** A normal event worth a line, e.g. `postgres.listening`. */
  info(event: string, fields?: LogFields): void
  /** Something to look at, e.g. `provider.breaker_transition`. */
  warn(event: string, fields?: LogFields): void
  /** A failure, e.g. `events.listener_failed`. */
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
