/**
 * The source of time for everything that schedules: backoff, leases and
 * polling deadlines. Tests inject a clock they move by hand.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() }

/** The clock's time as UTC ISO-8601 with milliseconds. */
export function isoNow(clock: Clock): string {
  return new Date(clock.now()).toISOString()
}

/** `ms` milliseconds after the clock's now, as UTC ISO-8601. */
export function isoAfter(clock: Clock, ms: number): string {
  return new Date(clock.now() + ms).toISOString()
}
