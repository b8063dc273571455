/**
 * The breaker of one provider, on a manual clock: closed -> open after the
 * threshold of consecutive transient failures -> half-open after the
 * cool-down -> one trial -> closed or open again. 429s are neutral.
 */
import { describe, expect, it } from 'vitest'
import {
  type BreakerStateName,
  CircuitBreaker,
  TRIAL_BUSY_WAIT_MS,
} from '../src/resilience/circuit-breaker.js'
import { ManualClock } from './support.js'

const OPEN_MS = 30_000

function breaker(threshold = 3) {
  const clock = new ManualClock()
  const transitions: string[] = []
  const b = new CircuitBreaker({
    threshold,
    openMs: OPEN_MS,
    clock,
    onTransition: (from: BreakerStateName, to: BreakerStateName) =>
      transitions.push(`${from} -> ${to}`),
  })
  return { b, clock, transitions }
}

function fail(b: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i += 1) {
    expect(b.admit().allowed).toBe(true)
    b.recordFailure()
  }
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive transient failures, not before', () => {
    const { b, clock, transitions } = breaker(3)

    fail(b, 2)
    expect(b.state.name).toBe('closed')
    fail(b, 1)

    expect(b.state).toEqual({ name: 'open', until: clock.now() + OPEN_MS })
    expect(b.admit()).toEqual({
      allowed: false,
      retryAt: clock.now() + OPEN_MS,
    })
    expect(transitions).toEqual(['closed -> open'])
  })

  it('counts only consecutive failures: a success starts the count again', () => {
    const { b } = breaker(3)

    fail(b, 2)
    b.recordSuccess()
    fail(b, 2)

    expect(b.state.name).toBe('closed')
  })

  it('treats 429s as neither failure nor success', () => {
    const { b } = breaker(2)

    fail(b, 1)
    for (let i = 0; i < 10; i += 1) b.recordNeutral()
    expect(b.state).toEqual({ name: 'closed', failures: 1 })
    fail(b, 1)

    expect(b.state.name).toBe('open')
  })

  it('refuses every call during the cool-down and turns half-open when it ends', () => {
    const { b, clock, transitions } = breaker(1)
    fail(b, 1)

    clock.advance(OPEN_MS - 1)
    expect(b.admit().allowed).toBe(false)
    clock.advance(1)

    expect(b.state).toEqual({ name: 'half_open', trialRunning: false })
    expect(transitions).toEqual(['closed -> open', 'open -> half_open'])
  })

  it('admits exactly one trial at a time at half-open; the others wait briefly', () => {
    const { b, clock } = breaker(1)
    fail(b, 1)
    clock.advance(OPEN_MS)

    const answers = [b.admit(), b.admit(), b.admit()]

    expect(answers).toEqual([
      { allowed: true, trial: true },
      { allowed: false, retryAt: clock.now() + TRIAL_BUSY_WAIT_MS },
      { allowed: false, retryAt: clock.now() + TRIAL_BUSY_WAIT_MS },
    ])
  })

  it('closes after a successful trial', () => {
    const { b, clock, transitions } = breaker(1)
    fail(b, 1)
    clock.advance(OPEN_MS)

    b.admit()
    b.recordSuccess()

    expect(b.state).toEqual({ name: 'closed', failures: 0 })
    expect(b.admit()).toEqual({ allowed: true, trial: false })
    expect(transitions.at(-1)).toBe('half_open -> closed')
  })

  it('opens for another full cool-down after a failed trial', () => {
    const { b, clock, transitions } = breaker(5)
    fail(b, 5)
    clock.advance(OPEN_MS + 1234)

    b.admit()
    b.recordFailure()

    expect(b.state).toEqual({ name: 'open', until: clock.now() + OPEN_MS })
    expect(transitions).toEqual([
      'closed -> open',
      'open -> half_open',
      'half_open -> open',
    ])
  })

  it('lets a new trial through after a trial answered 429', () => {
    const { b, clock } = breaker(1)
    fail(b, 1)
    clock.advance(OPEN_MS)

    b.admit()
    b.recordNeutral()

    expect(b.admit()).toEqual({ allowed: true, trial: true })
  })

  it('keeps its cool-down when a call admitted before it opened ends late', () => {
    const { b, clock } = breaker(1)
    expect(b.admit().allowed).toBe(true)
    fail(b, 1)

    b.recordSuccess()

    expect(b.state).toEqual({ name: 'open', until: clock.now() + OPEN_MS })
  })

  it('refuses a threshold or cool-down that is not a whole number in range, naming it', () => {
    const clock = new ManualClock()
    expect(
      () => new CircuitBreaker({ threshold: 0, openMs: 1, clock }),
    ).toThrow(/threshold.*got 0/)
    expect(
      () => new CircuitBreaker({ threshold: 1.5, openMs: 1, clock }),
    ).toThrow(RangeError)
    expect(
      () => new CircuitBreaker({ threshold: 1, openMs: -1, clock }),
    ).toThrow(/openMs.*got -1/)
  })
})
