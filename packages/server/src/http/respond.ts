import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { HttpError } from './http-error.js'

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
}

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

/** Sets the headers every response carries. */
export function setCommonHeaders(
  response: ServerResponse,
  requestId: string,
): void {
  response.setHeader('X-Request-Id', requestId)
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    response.setHeader(name, value)
  }
}

/** Writes a JSON response; a HEAD request gets the headers only. */
export function sendJson(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body)
  response.statusCode = status
  for (const [name, value] of Object.entries(headers)) {
    response.setHeader(name, value)
  }
  response.setHeader('Content-Type', 'application/json; charset=utf-8')
  response.setHeader('Content-Length', Buffer.byteLength(text))
  response.end(request.method === 'HEAD' ? undefined : text)
}

/** Writes a body that is not JSON; a HEAD request gets the headers only. */
export function sendText(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  text: { readonly contentType: string; readonly body: string },
  headers: Readonly<Record<string, string>> = {},
): void {
  response.statusCode = status
  for (const [name, value] of Object.entries(headers)) {
    response.setHeader(name, value)
  }
  response.setHeader('Content-Type', text.contentType)
  response.setHeader('Content-Length', Buffer.byteLength(text.body))
  response.end(request.method === 'HEAD' ? undefined : text.body)
}

/** Writes the error body `{code, message, request_id, details?}`. */
export function sendError(
  request: IncomingMessage,
  response: ServerResponse,
  error: HttpError,
  requestId: string,
): void {
  const body: Record<string, unknown> = {
    code: error.code,
    message: error.message,
    request_id: requestId,
  }
  if (error.details) body.details = error.details
  sendJson(request, response, error.status, body, error.headers)
}
