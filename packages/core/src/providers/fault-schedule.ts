import type { ChannelFamily } from '../messages/types.js'

/** Shares of provider calls that fail on purpose, in whole percent. */
export interface FaultRates {
  /** Calls that hang until the caller's time limit. 0 to 100. */
  readonly timeoutPct: number
  /** Calls answered with a server error (5xx). 0 to 100. */
  readonly errorPct: number
  /** Calls answered 429 Too Many Requests. 0 to 100. */
  readonly rateLimitPct: number
}

/** A fault schedule: its rates and the seed that makes it repeatable. */
export interface FaultSchedule extends FaultRates {
  /** Any 32-bit unsigned integer. */
  readonly seed: number
}

/** What one call does under a fault schedule. */
export type ScheduledFault = 'none' | 'timeout' | 'error' | 'rate_limit'

/** No faults at all. */
export const NO_FAULTS: FaultRates = {
  timeoutPct: 0,
  errorPct: 0,
  rateLimitPct: 0,
}

/**
 * Checks fault rates: whole numbers from 0 to 100 that add up to at most
 * 100. Returns the problems found, empty when the rates are valid.
 */
export function faultRateProblems(rates: Partial<FaultRates>): string[] {
  const problems: string[] = []
  let sum = 0
  for (const name of ['timeoutPct', 'errorPct', 'rateLimitPct'] as const) {
    const value = rates[name]
    if (value === undefined) continue
    if (!Number.isInteger(value) || value < 0 || value > 100) {
      problems.push(`${name} must be a whole number from 0 to 100`)
    } else {
      sum += value
    }
  }
  if (problems.length === 0 && sum > 100) {
    problems.push('the percentages must add up to at most 100')
  }
  return problems
}

/**
 * Decides what the call for `attempt` of `messageId` does: a pure function
 * of (seed, family, message id, attempt), so that a seeded run replays
 * exactly whatever order the workers claim jobs in. The standalone mock
 * provider server applies the same rule to the ids Parley sends it.
 */
export function scheduledFault(
  schedule: FaultSchedule,
  family: ChannelFamily,
  messageId: string,
  attempt: number,
): ScheduledFault {
  const roll = hashToPercentile(
    `${schedule.seed}:${family}:${messageId}:${attempt}`,
  )
  if (roll < schedule.timeoutPct) return 'timeout'
  if (roll < schedule.timeoutPct + schedule.errorPct) return 'error'
  if (roll < schedule.timeoutPct + schedule.errorPct + schedule.rateLimitPct) {
    return 'rate_limit'
  }
  return 'none'
}

/** A fresh random seed, for schedules that were given none. */
export function randomSeed(random: () => number): number {
  return Math.floor(random() * 0x1_0000_0000) >>> 0
}

// A uniform draw in [0, 100) from a string: FNV-1a over the UTF-16 code
// units, then the murmur3 finalizer to spread the low bits, then a
// multiply-shift into the range (avoids the modulo bias of `% 100`).
function hashToPercentile(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return ((hash >>> 0) * 100) / 0x1_0000_0000
}
