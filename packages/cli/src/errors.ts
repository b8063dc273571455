import { toPrintable } from './format/printable.js'

/** One entry of a validation error's `details`: the field and what is wrong. */
export interface ErrorDetail {
  field: string
  message: string
}

/**
 * Base class of every failure the CLI reports itself. Its message is shown
 * after `error: ` and the command exits with status 1.
 */
export class CliError extends Error {
  override name = 'CliError'
}

/** The server answered with a Parley error body (`code`, `message`, ...). */
export class ApiError extends CliError {
  override name = 'ApiError' as const

  constructor(
    /** The HTTP status of the answer. */
    readonly status: number,
    /** The server's stable error code, such as `validation_failed`. */
    readonly code: string,
    message: string,
    /** The server's request id, for finding the request in its logs. */
    readonly requestId: string | undefined,
    /** The bad fields of a validation error; empty otherwise. */
    readonly details: readonly ErrorDetail[],
  ) {
    super(message)
  }
}

/** Nothing answered at the server URL (connection refused, unknown host...). */
export class ServerUnreachableError extends CliError {
  override name = 'ServerUnreachableError' as const

  constructor(
    readonly url: string,
    /** Why, when known: a system error code such as `ECONNREFUSED`. */
    readonly reason: string | undefined,
  ) {
    const why = reason === undefined ? '' : ` (${toPrintable(reason)})`
    super(
      `no Parley server answers at ${url}${why} — start one with ` +
        '`parley serve` or pass --url',
    )
  }
}

/** The server accepted the connection but did not answer in time. */
export class ServerTimeoutError extends CliError {
  override name = 'ServerTimeoutError' as const

  constructor(
    readonly url: string,
    /** How long the CLI waited, in milliseconds. */
    readonly timeoutMs: number,
  ) {
    super(`the server at ${url} did not answer within ${timeoutMs / 1000} s`)
  }
}

/** The server answered, but not with the JSON a Parley server sends. */
export class UnexpectedResponseError extends CliError {
  override name = 'UnexpectedResponseError' as const

  constructor(
    readonly url: string,
    /** The HTTP status of the answer. */
    readonly status: number,
    reason: string,
  ) {
    super(
      `unexpected answer from ${url} (HTTP ${status}): ${toPrintable(reason)}` +
        ' — is it a Parley server?',
    )
  }
}
