import { type Rejection, rejected } from './verification.js'

/** Why a signed timestamp was refused. */
export type TimestampFailure =
  'malformed_timestamp' | 'stale_timestamp' | 'future_timestamp'

/**
 * Default tolerance of signed timestamps, in seconds, in both directions:
 * five minutes, as the Standard Webhooks specification recommends.
 */
export const DEFAULT_TOLERANCE_SECONDS = 300

// Digits only: no sign, no fraction, no exponent, no surrounding junk that
// `parseInt` would quietly skip. 12 digits reach the year 33658.
const UNIX_SECONDS = /^[0-9]{1,12}$/

/**
 * Checks that a signed timestamp (unix seconds, as text) lies within
 * `toleranceSeconds` of `nowMs` in either direction; exactly at the
 * tolerance is still accepted. Returns the parsed seconds or a rejection.
 */
export function checkTimestamp(
  text: string,
  nowMs: number,
  toleranceSeconds: number,
): number | Rejection<TimestampFailure> {
  if (!UNIX_SECONDS.test(text)) {
    return rejected(
      'malformed_timestamp',
      'the signature timestamp is malformed',
    )
  }
  const timestamp = Number(text)
  const now = Math.floor(nowMs / 1000)
  if (now - timestamp > toleranceSeconds) {
    return rejected('stale_timestamp', 'the signature timestamp is too old')
  }
  if (timestamp - now > toleranceSeconds) {
    return rejected(
      'future_timestamp',
      'the signature timestamp is in the future',
    )
  }
  return timestamp
}

/**
 * Validates a tolerance option once: a non-negative integer of seconds.
 *
 * @throws RangeError naming the option and the value received.
 */
export function checkTolerance(toleranceSeconds: number): number {
  if (!Number.isSafeInteger(toleranceSeconds) || toleranceSeconds < 0) {
    throw new RangeError(
      `toleranceSeconds must be a non-negative integer; received ${toleranceSeconds}`,
    )
  }
  return toleranceSeconds
}
