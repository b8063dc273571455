import { randomUUID } from 'node:crypto'
import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http'
import type { RateLimitDecision } from '@parley/core'
import type { ErrorAnswer } from './http-error.js'
import { addRateLimitHeaders } from './rate-limit-headers.js'

const VISIBLE_ASCII = /^[\x21-\x7e]{1,128}$/

/**
 * The request's id: the client's `X-Request-Id` when it is 1 to 128
 * visible ASCII characters, else a fresh one.
 */
export function requestIdOf(request: IncomingMessage): string {
  const given = request.headers['x-request-id']
  if (typeof given === 'string' && VISIBLE_ASCII.test(given)) return given
  return randomUUID()
}

/** What goes into an answer's headers besides the common ones. */
export interface AnswerHeaders {
  readonly requestId: string
  /** The `RateLimit-*` headers describe this decision. */
  readonly rateLimit?: RateLimitDecision | undefined
  /** The handler's or the error's own headers. */
  readonly extra?: Readonly<Record<string, string>> | undefined
}

/**
 * The headers every response carries (its id and the security headers),
 * then the rate-limit headers and the extra ones, in that order. They are
 * written with the status in one `writeHead` call: setting them one by one
 * with `setHeader` validated and stored each twice.
 */
function answerHeaders(
  answer: AnswerHeaders,
  contentType: string,
  contentLength: number,
): OutgoingHttpHeaders {
  // One literal, one shape: the security headers are constants.
  const headers: OutgoingHttpHeaders = {
    'X-Request-Id': answer.requestId,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  }
  addRateLimitHeaders(headers, answer.rateLimit)
  const extra = answer.extra
  if (extra) {
    for (const name in extra) headers[name] = extra[name]
  }
  headers['Content-Type'] = contentType
  headers['Content-Length'] = contentLength
  return headers
}

/** Writes a JSON response; a HEAD request gets the headers only. */
export function sendJson(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: unknown,
  answer: AnswerHeaders,
): void {
  sendText(
    request,
    response,
    status,
    { contentType: JSON_TYPE, body: JSON.stringify(body) },
    answer,
  )
}

const JSON_TYPE = 'application/json; charset=utf-8'

/** Writes a body that is not JSON; a HEAD request gets the headers only. */
export function sendText(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  text: { readonly contentType: string; readonly body: string },
  answer: AnswerHeaders,
): void {
  response.writeHead(
    status,
    answerHeaders(answer, text.contentType, Buffer.byteLength(text.body)),
  )
  response.end(request.method === 'HEAD' ? undefined : text.body)
}

/** Writes the error body `{code, message, request_id, details?}`. */
export function sendError(
  request: IncomingMessage,
  response: ServerResponse,
  error: ErrorAnswer,
  answer: Omit<AnswerHeaders, 'extra'>,
): void {
  const body: Record<string, unknown> = {
    code: error.code,
    message: error.message,
    request_id: answer.requestId,
  }
  if (error.details) body.details = error.details
  sendJson(request, response, error.status, body, {
    requestId: answer.requestId,
    rateLimit: answer.rateLimit,
    extra: error.headers,
  })
}
