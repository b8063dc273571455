import { toPrintable } from './format/printable.js'
import { redactUrl } from './format/redact-url.js'

/** One entry of a validation error's `details`: the field and what is wrong. */
export interface ErrorDetail {
  field: string
  message: string
}

/**
 * The stable codes of the failures the CLI finds itself (an `ApiError`
 * carries the server's code instead).
 */
export type CliErrorCode =
  | 'server_missing'
  | 'server_unreachable'
  | 'server_timeout'
  | 'unexpected_response'
  | 'bad_configuration'
  | 'listen_failed'
  | 'shutdown_incomplete'
  | 'migration_failed'
  | 'poll_failed'
  | 'load_rejected'
  | 'load_incomplete'
  | 'interrupted'
  | 'blocked_port'
  | 'usage'

/**
 * Base class of every failure the CLI reports itself. Its message is shown
 * after `error: ` and the command exits with status 1.
 */
export class CliError extends Error {
  override name = 'CliError'

  constructor(
    /** A stable code: a {@link CliErrorCode}, or the server's (`ApiError`). */
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/**
 * The command line was wrong in a way only the command could see (such as
 * a --database-url the server's configuration refuses): reported like a
 * failure, but exit status 2.
 */
export class UsageError extends CliError {
  override name = 'UsageError' as const

  constructor(message: string) {
    super('usage', message)
  }
}

/** The server answered with a Parley error body (`code`, `message`, ...). */
export class ApiError extends CliError {
  override name = 'ApiError' as const

  /**
   * What to do next, when the command that made the request knows better
   * than the error code alone (see `hintNotFound`).
   */
  hint: string | undefined

  constructor(
    /** The HTTP status of the answer. */
    readonly status: number,
    /** The server's stable error code, such as `validation_failed`. */
    code: string,
    message: string,
    /** The server's request id, for finding the request in its logs. */
    readonly requestId: string | undefined,
    /** The bad fields of a validation error; empty otherwise. */
    readonly details: readonly ErrorDetail[],
    /** The answer's `Retry-After`, in seconds, when it had one (429, 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message)
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
      'server_unreachable',
      `no Parley server answers at ${redactUrl(url)}${why} — start one with ` +
        '`parley serve` or pass --url',
    )
  }
}

/**
 * fetch refused to connect: the URL's port is one that fetch blocks (as
 * browsers do), such as 6000 or 10080, whatever listens there.
 */
export class BlockedPortError extends CliError {
  override name = 'BlockedPortError' as const

  constructor(readonly url: string) {
    const port = portOf(url)
    super(
      'blocked_port',
      `cannot call ${redactUrl(url)}: fetch blocks port ${port} (one of the ` +
        'ports browsers and Node refuse to call, such as 6000 and 10080) — ' +
        'run the server on another port, such as `parley serve --port 8080`',
    )
  }
}

function portOf(url: string): string {
  try {
    const parsed = new URL(url)
    return parsed.port || (parsed.protocol === 'https:' ? '443' : '80')
  } catch {
    return '?'
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
    super(
      'server_timeout',
      `the server at ${redactUrl(url)} did not answer within ${timeoutMs / 1000} s — ` +
        'it may be overloaded or stuck: check its logs and `parley metrics`',
    )
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
      'unexpected_response',
      `unexpected answer from ${redactUrl(url)} (HTTP ${status}): ${toPrintable(reason)}` +
        ' — is it a Parley server?',
    )
  }
}

/**
 * Awaits `work`, and when the server answers 404 `not_found`, attaches
 * `hint` (how to find a valid id) to the error it rejects with.
 */
export async function hintNotFound<T>(
  work: Promise<T>,
  hint: string,
): Promise<T> {
  try {
    return await work
  } catch (error) {
    if (error instanceof ApiError && error.code === 'not_found') {
      error.hint = hint
    }
    throw error
  }
}
