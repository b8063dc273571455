import type { Clock } from '../util/clock.js'

/** Options of a {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive transient failures that open it, 1 or more. */
  readonly threshold: number
  /** How long it stays open before a trial call, in ms. */
  readonly openMs: number
  /** The time source for the cool-down; tests pass a fake one. */
  readonly clock: Clock
  /** Called on every state change. Must not throw. */
  readonly onTransition?: (from: BreakerStateName, to: BreakerStateName) => void
}

/** The names of the breaker's states. */
export type BreakerStateName = 'closed' | 'open' | 'half_open'

/** The breaker's state; each variant carries only what it needs. */
export type BreakerState =
  | { readonly name: 'closed'; readonly failures: number }
  | { readonly name: 'open'; readonly until: number }
  | { readonly name: 'half_open'; readonly trialRunning: boolean }

/** Whether a call may go ahead, and if not, when to ask again. */
export type Admission =
  | { readonly allowed: true; readonly trial: boolean }
  | { readonly allowed: false; readonly retryAt: number }

/** How long a call waits when the half-open trial is already running. */
export const TRIAL_BUSY_WAIT_MS = 1000

/**
 * A circuit breaker for one provider: closed until `threshold` consecutive
 * transient failures, then open for `openMs`, then half-open, when it lets
 * exactly one trial call through: its success closes the breaker, its
 * failure opens it for another cool-down. Rate-limit answers are neither
 * success nor failure. Reads the injected clock; holds no timers.
 */
export class CircuitBreaker {
  private current: BreakerState = { name: 'closed', failures: 0 }

  constructor(private readonly options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.threshold) || options.threshold < 1) {
      throw new RangeError(
        `breaker threshold must be a whole number >= 1, got ${options.threshold}`,
      )
    }
    if (!Number.isInteger(options.openMs) || options.openMs < 0) {
      throw new RangeError(
        `breaker openMs must be a whole number >= 0, got ${options.openMs}`,
      )
    }
  }

  /** The current state (an open breaker past its time reads half-open). */
  get state(): BreakerState {
    this.expireOpen()
    return this.current
  }

  /**
   * The state's name as the next call would find it, without moving the
   * breaker (an open breaker past its cool-down reads half-open): gauges
   * must not change what they measure.
   */
  peekStateName(): BreakerStateName {
    const state = this.current
    if (state.name === 'open' && this.now() >= state.until) return 'half_open'
    return state.name
  }

  /** Asks to make a call. An allowed half-open call is the trial. */
  admit(): Admission {
    this.expireOpen()
    const state = this.current
    switch (state.name) {
      case 'closed':
        return { allowed: true, trial: false }
      case 'open':
        return { allowed: false, retryAt: state.until }
      case 'half_open':
        if (state.trialRunning) {
          return { allowed: false, retryAt: this.now() + TRIAL_BUSY_WAIT_MS }
        }
        this.current = { name: 'half_open', trialRunning: true }
        return { allowed: true, trial: true }
    }
  }

  /** Records a call that succeeded (or was rejected for good: the provider answered). */
  recordSuccess(): void {
    switch (this.current.name) {
      case 'closed':
        this.current = { name: 'closed', failures: 0 }
        return
      case 'half_open':
        this.close()
        return
      case 'open':
        // A call admitted before the breaker opened: the cool-down stands.
        return
    }
  }

  /** Records a transient failure (5xx, timeout, connection error). */
  recordFailure(): void {
    const state = this.current
    switch (state.name) {
      case 'closed':
        if (state.failures + 1 >= this.options.threshold) this.open()
        else this.current = { name: 'closed', failures: state.failures + 1 }
        return
      case 'half_open':
        this.open()
        return
      case 'open':
        return
    }
  }

  /** Records a call that told us to slow down: ends a trial, changes nothing. */
  recordNeutral(): void {
    if (this.current.name === 'half_open') {
      this.current = { name: 'half_open', trialRunning: false }
    }
  }

  private open(): void {
    this.transition({ name: 'open', until: this.now() + this.options.openMs })
  }

  private close(): void {
    this.transition({ name: 'closed', failures: 0 })
  }

  private expireOpen(): void {
    const state = this.current
    if (state.name === 'open' && this.now() >= state.until) {
      this.transition({ name: 'half_open', trialRunning: false })
    }
  }

  private transition(next: BreakerState): void {
    const from = this.current.name
    this.current = next
    if (from !== next.name) this.options.onTransition?.(from, next.name)
  }

  private now(): number {
    return this.options.clock.now()
  }
}
