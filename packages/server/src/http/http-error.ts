import type { FieldError } from '@parley/core'

/** Stable error codes of the HTTP API, each with one status. */
export type ErrorCode =
  | 'validation_failed'
  | 'invalid_json'
  | 'invalid_request'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'not_acceptable'
  | 'request_timeout'
  | 'idempotency_in_progress'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'expectation_failed'
  | 'no_route'
  | 'idempotency_key_reused'
  | 'rate_limited'
  | 'headers_too_large'
  | 'unavailable'
  | 'internal'

/** The one table that maps error codes to HTTP statuses. */
export const STATUS_OF: Readonly<Record<ErrorCode, number>> = {
  validation_failed: 400,
  invalid_json: 400,
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  request_timeout: 408,
  idempotency_in_progress: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  expectation_failed: 417,
  no_route: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  headers_too_large: 431,
  unavailable: 503,
  internal: 500,
}

/** What an error answer is made of; an {@link HttpError} is one. */
export interface ErrorAnswer {
  readonly status: number
  readonly code: ErrorCode
  readonly message: string
  readonly headers: Readonly<Record<string, string>>
  readonly details?: readonly FieldError[] | undefined
}

/** An error answered with its status, code and message. */
export class HttpError extends Error {
  /** Always `HttpError`. */
  override readonly name = 'HttpError'
  /** The HTTP status, which the code determines. */
  readonly status: number

  constructor(
    /** The stable error code of the response body. */
    readonly code: ErrorCode,
    message: string,
    /** Headers the response carries, such as `Retry-After`. */
    readonly headers: Readonly<Record<string, string>> = {},
    /** What is wrong with each field, for `validation_failed`. */
    readonly details?: readonly FieldError[],
  ) {
    super(message)
    this.status = STATUS_OF[code]
  }
}
