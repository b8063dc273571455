import type { RateLimitDecision } from './resilience/rate-limiter.js'

/**
 * Every error that core throws on purpose is a `ParleyError` with a stable
 * `code`. Callers branch on `code` (or the `is…` guards); the server maps
 * each code to an HTTP status in one table.
 */

/** Stable machine-readable codes of the errors core throws. */
export type ParleyErrorCode =
  | 'validation_failed'
  | 'not_found'
  | 'no_route'
  | 'unavailable'
  | 'idempotency_key_reused'
  | 'idempotency_in_progress'
  | 'rate_limited'

// Marks Parley's errors across copies of the package: the ESM and CJS
// builds (or two installed versions) have distinct classes, so instanceof
// alone would miss an error made by the other one.
const PARLEY_ERROR = Symbol.for('@parley/core/ParleyError')

/** Base class of every error core throws on purpose. */
export class ParleyError extends Error {
  /** The class's name, e.g. `ValidationError`. */
  override readonly name: string = 'ParleyError'
  /** What went wrong, as a stable machine-readable code. */
  readonly code: ParleyErrorCode

  constructor(code: ParleyErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    Object.defineProperty(this, PARLEY_ERROR, { value: true })
  }
}

/** One rejected field of a request, named by its JSON path. */
export interface FieldError {
  /** The field's name, e.g. `to` or `attachments[2]`. */
  readonly field: string
  /** What is wrong with it, in plain words. */
  readonly message: string
}

/** A request failed validation; `details` lists every bad field at once. */
export class ValidationError extends ParleyError {
  /** Always `ValidationError`. */
  override readonly name = 'ValidationError'
  /** Every bad field, each with what is wrong with it. */
  readonly details: readonly FieldError[]

  constructor(details: readonly FieldError[]) {
    super('validation_failed', describeFields(details))
    this.details = details
  }
}

/** The conversation or message asked for does not exist. */
export class NotFoundError extends ParleyError {
  /** Always `NotFoundError`. */
  override readonly name = 'NotFoundError'

  constructor(what: string, id: string) {
    super('not_found', `${what} ${JSON.stringify(id)} does not exist`)
  }
}

/** No provider is configured for the message's channel family. */
export class NoRouteError extends ParleyError {
  /** Always `NoRouteError`. */
  override readonly name = 'NoRouteError'
  /** The channel family without a provider: `sms` or `email`. */
  readonly family: string

  constructor(family: string) {
    super('no_route', `no provider is configured for the ${family} family`)
    this.family = family
  }
}

/** Parley is stopping or its storage failed; the caller may retry later. */
export class UnavailableError extends ParleyError {
  /** Always `UnavailableError`. */
  override readonly name = 'UnavailableError'
  /**
   * True when storage refuses every write until the server is restarted
   * (its database file was removed or damaged, or a sync of its disk
   * failed), so that the message holds for every request until then;
   * false when this request failed and the next may succeed.
   */
  readonly lasting: boolean

  constructor(
    message: string,
    options?: ErrorOptions & { readonly lasting?: boolean },
  ) {
    super('unavailable', message, { cause: options?.cause })
    this.lasting = options?.lasting ?? false
  }
}

/** An idempotency key was used before with a different request body. */
export class IdempotencyKeyReusedError extends ParleyError {
  /** Always `IdempotencyKeyReusedError`. */
  override readonly name = 'IdempotencyKeyReusedError'

  constructor() {
    super(
      'idempotency_key_reused',
      'this Idempotency-Key was used with a different request body',
    )
  }
}

/** A request with the same idempotency key and body is still running. */
export class IdempotencyInProgressError extends ParleyError {
  /** Always `IdempotencyInProgressError`. */
  override readonly name = 'IdempotencyInProgressError'

  constructor() {
    super(
      'idempotency_in_progress',
      'a request with this Idempotency-Key is still being processed; retry shortly',
    )
  }
}

/** A rate limit refused the request; `decision` says when to retry. */
export class RateLimitedError extends ParleyError {
  /** Always `RateLimitedError`. */
  override readonly name = 'RateLimitedError'
  /** The refused decision, for `Retry-After` and `RateLimit-*`. */
  readonly decision: RateLimitDecision

  constructor(what: string, decision: RateLimitDecision) {
    super(
      'rate_limited',
      `too many requests ${what}; retry after ${decision.retryAfterSeconds} s`,
    )
    this.decision = decision
  }
}

/**
 * True when `error` is a {@link ParleyError}: of any kind, or, given a
 * `code`, with that code. It recognises errors of every copy of the
 * package (the ESM and the CommonJS build, or two installed versions),
 * where `instanceof` sees only its own.
 *
 * @example
 * ```ts
 * if (isParleyError(error, 'rate_limited')) return retryLater()
 * ```
 */
export function isParleyError<Code extends ParleyErrorCode = ParleyErrorCode>(
  error: unknown,
  code?: Code,
): error is ParleyError & { readonly code: Code } {
  if (!isBranded(error)) return false
  return code === undefined || error.code === code
}

/**
 * True when `error` is a {@link ValidationError}, made by this copy of
 * the package or another one.
 */
export function isValidationError(error: unknown): error is ValidationError {
  return isParleyError(error, 'validation_failed')
}

function isBranded(error: unknown): error is ParleyError {
  if (error instanceof ParleyError) return true
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as Record<symbol, unknown>)[PARLEY_ERROR] === true
  )
}

function describeFields(details: readonly FieldError[]): string {
  const fields = details.map((detail) => detail.field).join(', ')
  return `request failed validation: ${fields}`
}
