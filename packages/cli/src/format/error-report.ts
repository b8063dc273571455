import { ApiError } from '../errors.js'
import { toPrintable } from './printable.js'

/**
 * The text printed on standard error when a command fails: `error: ` and
 * the message, then for a server error its code, each bad field on its own
 * line, and the request id to look for in the server's logs.
 */
export function formatErrorReport(error: unknown): string {
  if (error instanceof ApiError) return formatApiError(error)

  const message = error instanceof Error ? error.message : String(error)
  return `error: ${message}\n`
}

function formatApiError(error: ApiError): string {
  const lines = [`error: ${toPrintable(`${error.code}: ${error.message}`)}`]
  for (const { field, message } of error.details) {
    lines.push(`  ${toPrintable(`${field}: ${message}`)}`)
  }
  if (error.code === 'unauthorized') {
    lines.push('hint: pass --api-key or set PARLEY_API_KEY')
  }
  if (error.requestId !== undefined) {
    lines.push(`(request id: ${toPrintable(error.requestId)})`)
  }
  return lines.join('\n') + '\n'
}
