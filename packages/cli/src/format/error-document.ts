import { CommanderError } from 'commander'

import { ApiError, CliError } from '../errors.js'
import { hintFor } from './error-report.js'

/**
 * The JSON document a failing command prints on standard output under
 * `--json` (its human report still goes to standard error).
 */
export interface ErrorDocument {
  error: {
    /** A stable code: the server's, the CLI's own, or `usage`. */
    code: string
    message: string
    /** What to do next, when the CLI can tell. */
    hint?: string
    /** The HTTP status, when the server answered. */
    status?: number
    /** The server's request id, when it sent one. */
    request_id?: string
    /** The bad fields of a validation error. */
    details?: { field: string; message: string }[]
  }
}

/** Describes any failure as an {@link ErrorDocument}. */
export function errorDocument(error: unknown): ErrorDocument {
  if (error instanceof ApiError) return apiErrorDocument(error)
  if (error instanceof CommanderError) {
    return { error: { code: 'usage', message: usageMessage(error) } }
  }
  if (error instanceof CliError) {
    return { error: { code: error.code, message: error.message } }
  }
  const message = error instanceof Error ? error.message : String(error)
  return { error: { code: 'internal', message } }
}

function apiErrorDocument(error: ApiError): ErrorDocument {
  const hint = hintFor(error)
  return {
    error: {
      code: error.code,
      message: error.message,
      status: error.status,
      ...(hint === undefined ? {} : { hint }),
      ...(error.requestId === undefined ? {} : { request_id: error.requestId }),
      ...(error.details.length === 0 ? {} : { details: [...error.details] }),
    },
  }
}

// Commander shows the help (its message is the internal "(outputHelp)")
// when a command, or a group's subcommand, is missing.
function usageMessage(error: CommanderError): string {
  if (error.code === 'commander.help' || error.message === '(outputHelp)') {
    return 'a command is needed: run parley --help to see them'
  }
  return error.message.replace(/^error: /, '')
}
