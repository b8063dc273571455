import picocolors from 'picocolors'

import { ApiError } from '../errors.js'
import type { Colors } from '../output.js'
import { toPrintable } from './printable.js'

const plain = picocolors.createColors(false)

/**
 * The text printed on standard error when a command fails: `error: ` and
 * the message, then for a server error its code, each bad field on its own
 * line, what to do next when the code suggests something, and the request
 * id to look for in the server's logs.
 */
export function formatErrorReport(
  error: unknown,
  colors: Colors = plain,
): string {
  if (error instanceof ApiError) return formatApiError(error, colors)

  const message = error instanceof Error ? error.message : String(error)
  return `${colors.red('error:')} ${message}\n`
}

function formatApiError(error: ApiError, colors: Colors): string {
  const lines = [
    `${colors.red('error:')} ${toPrintable(`${error.code}: ${error.message}`)}`,
  ]
  for (const { field, message } of error.details) {
    lines.push(`  ${toPrintable(`${field}: ${message}`)}`)
  }
  const hint = hintFor(error)
  if (hint !== undefined) lines.push(`${colors.yellow('hint:')} ${hint}`)
  if (error.requestId !== undefined) {
    lines.push(colors.dim(`(request id: ${toPrintable(error.requestId)})`))
  }
  return lines.join('\n') + '\n'
}

/** What to do next, for the error codes where the CLI can tell. */
export function hintFor(error: ApiError): string | undefined {
  if (error.hint !== undefined) return error.hint
  const wait =
    error.retryAfterSeconds === undefined
      ? 'a moment'
      : `${error.retryAfterSeconds} s`
  switch (error.code) {
    case 'unauthorized':
      return 'pass --api-key or set PARLEY_API_KEY'
    case 'rate_limited':
      return (
        `wait ${wait} and run it again; for tests and load, start the ` +
        'server with higher API_RATE_LIMIT_PER_IP_PER_MIN and ' +
        'API_RATE_LIMIT_PER_SENDER_PER_MIN'
      )
    case 'unavailable':
      return (
        `try again in ${wait}; the server is starting, shutting down, or ` +
        'cannot reach its database (see its logs)'
      )
    case 'no_route':
      return (
        'the server has no provider for this channel: set ' +
        'API_SMS_PROVIDERS or API_EMAIL_PROVIDERS'
      )
    case 'idempotency_key_reused':
      return 'use a new --idempotency-key, or the same flags as the first run'
    case 'idempotency_in_progress':
      return 'the first request with this key is still running; try again'
    default:
      return undefined
  }
}
