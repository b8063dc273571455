/** Options of {@link pollUntil}. */
export interface PollOptions {
  /** Give up after this long, in ms. @default 20000 */
  readonly timeoutMs?: number
  /** Wait between tries, in ms. @default 50 */
  readonly intervalMs?: number
  /** What is awaited, for the timeout message. */
  readonly description?: string
}

/** What {@link pollUntil} found, and how long it took. */
export interface PollResult<T> {
  readonly value: T
  readonly elapsedMs: number
}

/**
 * Calls `check` until it returns something other than `undefined` or
 * `false`, and resolves that value with the time it took. Errors thrown by
 * `check` count as "not yet". On timeout, rejects with the last value or
 * error seen.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: PollOptions = {},
): Promise<PollResult<T>> {
  const timeoutMs = options.timeoutMs ?? 20_000
  const intervalMs = options.intervalMs ?? 50
  const started = performance.now()
  let last: unknown = 'nothing yet'
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) {
        return { value, elapsedMs: performance.now() - started }
      }
      last = value
    } catch (error) {
      last = error
    }
    if (performance.now() - started >= timeoutMs) {
      const what = options.description ?? 'condition'
      throw new Error(
        `${what} not met within ${timeoutMs} ms; last: ${describe(last)}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.stack ?? value.message
  try {
    return JSON.stringify(value)
  } catch {
    return String(value)
  }
}
