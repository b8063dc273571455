/**
 * The global breaker of DESIGN section 6: it guards the HTTP API against
 * its own backend failing. After `threshold` consecutive requests that
 * failed in the backend it opens and short-circuits API routes with 503
 * for `openMs`; then one trial request goes through, whose success closes
 * it and whose failure opens it again.
 *
 * The state machine is core's {@link CircuitBreaker}; this wrapper adds
 * what HTTP requests need on top of it:
 *
 * - only settlements that belong to the current state count: a request
 *   admitted before the breaker opened, or a trial that was given up on,
 *   cannot close (or count against) the breaker when it ends late;
 * - a trial that never settles is given up after `trialTimeoutMs`, so one
 *   lost request cannot keep the API refused;
 * - refusals come with the `Retry-After` seconds to answer.
 */
import {
  type BreakerStateName,
  CircuitBreaker,
  type Clock,
  isParleyError,
  systemClock,
} from '@parley/core'
import { HttpError } from './http-error.js'

/**
 * How an admitted request ended, as far as the backend's health goes:
 * `success` (it was served), `backend_failure` (a 5xx caused by the
 * database or an internal error) or `neutral` (it says nothing about the
 * backend: 4xx answers, and the 503s the edge produces itself).
 */
export type RequestOutcome = 'success' | 'backend_failure' | 'neutral'

/** Options of a {@link GlobalBreaker}. */
export interface GlobalBreakerOptions {
  /**
   * Consecutive backend failures that open the breaker
   * (`API_GLOBAL_BREAKER_THRESHOLD`); a whole number, 1 or more.
   */
  readonly threshold: number
  /**
   * How long the breaker stays open before a trial, in ms
   * (`API_GLOBAL_BREAKER_OPEN_SECS` × 1000); a whole number, 0 or more.
   */
  readonly openMs: number
  /**
   * How long a trial request may run before it is given up on and the next
   * request becomes the trial, in ms; a whole number, 1 or more. Make it
   * longer than the body timeout plus a slow write.
   * @default 30000
   */
  readonly trialTimeoutMs?: number
  /** The source of time. @default the system clock */
  readonly clock?: Clock
  /**
   * Called on every state change (move `breaker_transitions` here). Runs
   * inside `admit` or `settle`; must not throw.
   */
  readonly onTransition?: (from: BreakerStateName, to: BreakerStateName) => void
  /**
   * Called for every request refused (move `breaker_open` here). Must not
   * throw.
   */
  readonly onShortCircuit?: (retryAfterSeconds: number) => void
}

/** An admitted request; hand it back to {@link GlobalBreaker.settle}. */
export interface BreakerPass {
  readonly allowed: true
  /** True for the one trial request of a half-open breaker. */
  readonly trial: boolean
  /** The epoch at admission; a pass of a past epoch settles nothing. */
  readonly epoch: number
}

/** A refused request: answer 503 `unavailable` with this `Retry-After`. */
export interface BreakerRefusal {
  readonly allowed: false
  /** Whole seconds until a trial may be admitted, at least 1. */
  readonly retryAfterSeconds: number
  /**
   * What the client was told by the last backend failure, when it holds
   * for every client: storage refuses writes until a restart (see
   * {@link failureMessage}); undefined for other failures.
   */
  readonly lastFailure?: string
}

/** What {@link GlobalBreaker.admit} decided. */
export type GlobalAdmission = BreakerPass | BreakerRefusal

/** @see GlobalBreakerOptions.trialTimeoutMs */
export const DEFAULT_TRIAL_TIMEOUT_MS = 30_000

/**
 * The global breaker. Call {@link GlobalBreaker.admit} when an API request
 * arrives (health, readiness and metrics bypass it) and, when it was
 * allowed, {@link GlobalBreaker.settle} once its answer is known. Holds no
 * timers; reads the injected clock.
 *
 * @example
 * const breaker = new GlobalBreaker({ threshold: 20, openMs: 10_000 })
 * const admission = breaker.admit()
 * if (!admission.allowed) refuse(admission.retryAfterSeconds)
 * else breaker.settle(admission, requestOutcome({ status: 200 }))
 */
export class GlobalBreaker {
  private readonly breaker: CircuitBreaker
  private readonly clock: Clock
  private readonly trialTimeoutMs: number
  private readonly onShortCircuit: GlobalBreakerOptions['onShortCircuit']
  // Moves on every state change and every new trial, so that a pass can
  // tell whether the state it was admitted in still holds.
  private epoch = 0
  private trialDeadline = 0
  // The message of the last backend failure, while no success followed.
  private lastFailure: string | undefined

  constructor(options: GlobalBreakerOptions) {
    this.trialTimeoutMs = checkTrialTimeout(options.trialTimeoutMs)
    this.clock = options.clock ?? systemClock
    this.onShortCircuit = options.onShortCircuit
    const onTransition = options.onTransition
    this.breaker = new CircuitBreaker({
      threshold: options.threshold,
      openMs: options.openMs,
      clock: this.clock,
      onTransition: (from, to) => {
        this.epoch += 1
        onTransition?.(from, to)
      },
    })
  }

  /** The current state (an open breaker past its time reads half-open). */
  get state(): BreakerStateName {
    return this.breaker.state.name
  }

  /** Asks to serve a request. An allowed half-open request is the trial. */
  admit(): GlobalAdmission {
    this.giveUpAbandonedTrial()
    const admission = this.breaker.admit()
    if (!admission.allowed) return this.shortCircuit(admission.retryAt)
    if (admission.trial) this.startTrial()
    return { allowed: true, trial: admission.trial, epoch: this.epoch }
  }

  /**
   * Records how an admitted request ended. A trial's success closes the
   * breaker and its failure reopens it; a neutral trial frees the trial
   * slot for the next request. Outside a trial, successes reset the count
   * of consecutive failures and neutral outcomes change nothing.
   * `failure` is what the client of a backend failure was told, when it
   * may be repeated to the requests the open breaker refuses (see
   * {@link failureMessage}).
   */
  settle(pass: BreakerPass, outcome: RequestOutcome, failure?: string): void {
    if (pass.epoch !== this.epoch) return
    switch (outcome) {
      case 'success':
        this.lastFailure = undefined
        this.breaker.recordSuccess()
        return
      case 'backend_failure':
        this.lastFailure = failure
        this.breaker.recordFailure()
        return
      case 'neutral':
        if (pass.trial) this.endTrial()
        return
    }
  }

  private startTrial(): void {
    this.epoch += 1
    this.trialDeadline = this.clock.now() + this.trialTimeoutMs
  }

  // Frees the slot without a verdict; the pass of that trial goes stale.
  private endTrial(): void {
    this.epoch += 1
    this.breaker.recordNeutral()
  }

  private giveUpAbandonedTrial(): void {
    const state = this.breaker.state
    if (state.name !== 'half_open' || !state.trialRunning) return
    if (this.clock.now() >= this.trialDeadline) this.endTrial()
  }

  private shortCircuit(retryAt: number): BreakerRefusal {
    const waitMs = retryAt - this.clock.now()
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000))
    this.onShortCircuit?.(retryAfterSeconds)
    return this.lastFailure === undefined
      ? { allowed: false, retryAfterSeconds }
      : { allowed: false, retryAfterSeconds, lastFailure: this.lastFailure }
  }
}

function checkTrialTimeout(value: number | undefined): number {
  if (value === undefined) return DEFAULT_TRIAL_TIMEOUT_MS
  if (Number.isInteger(value) && value >= 1) return value
  throw new RangeError(
    `global breaker trialTimeoutMs must be a whole number >= 1, got ${value}`,
  )
}

/** What is known about an answered request, for {@link requestOutcome}. */
export interface AnsweredRequest {
  /** The status answered. */
  readonly status: number
  /** What the pipeline threw, when it failed. */
  readonly error?: unknown
  /** True once shutdown began: its refusals say nothing about the backend. */
  readonly shuttingDown?: boolean
  /**
   * False for a route that never touches the backend (the mock providers'
   * in-memory settings): its success says nothing about the database, so
   * it must not close the breaker. @default true
   */
  readonly reachesBackend?: boolean
  /**
   * True when the client went away before the answer was sent (say, in the
   * middle of its body): whatever the status reads, nothing was learned
   * about the backend. @default false
   */
  readonly abandoned?: boolean
}

/**
 * Classifies an answered request for {@link GlobalBreaker.settle}. Backend
 * failures are core's `unavailable` errors (storage failed), errors that
 * are not Parley's own (a driver error, a bug: answered 500) and the
 * `internal` HttpError. Every other HttpError (4xx, and the 503s of
 * shutdown, readiness and the breaker itself) and every other core error
 * (validation, not found, no route, idempotency, rate limits) is neutral.
 * Anything answered below 500 without an error is a success, unless its
 * route never reaches the backend: then it is neutral. So is a request
 * whose client went away before its answer was sent.
 */
export function requestOutcome(request: AnsweredRequest): RequestOutcome {
  const { error } = request
  if (request.shuttingDown || request.abandoned) return 'neutral'
  if (error === undefined) {
    if (request.status >= 500) return 'backend_failure'
    return request.reachesBackend === false ? 'neutral' : 'success'
  }
  if (error instanceof HttpError) {
    return error.code === 'internal' ? 'backend_failure' : 'neutral'
  }
  if (isParleyError(error)) {
    return error.code === 'unavailable' ? 'backend_failure' : 'neutral'
  }
  return 'backend_failure'
}

/**
 * What a backend failure told its client, when the open breaker may say it
 * again to every client: the message of core's `unavailable` errors that
 * are `lasting` (storage refuses every write until a restart), written for
 * clients and true for all of them. Undefined for anything else: a
 * failure of that one request (its message is about its own write), a
 * driver error or a bug (answered 500 `internal` without details).
 */
export function failureMessage(error: unknown): string | undefined {
  return isParleyError(error) &&
    error.code === 'unavailable' &&
    (error as { lasting?: unknown }).lasting === true
    ? error.message
    : undefined
}

/**
 * The refusal of an open breaker, for the pipeline to throw. It repeats
 * the last backend failure's message when there is one, so that a storage
 * refusing writes until a restart is not hidden behind "try again later".
 */
export function breakerOpenError(refusal: BreakerRefusal): HttpError {
  const last =
    refusal.lastFailure === undefined
      ? ''
      : ` (last failure: ${refusal.lastFailure})`
  return new HttpError(
    'unavailable',
    `the service is failing in its backend${last}; try again later`,
    { 'Retry-After': String(refusal.retryAfterSeconds) },
  )
}
