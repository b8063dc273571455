import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Answer, ParsedBody } from './provider-apis.js'

/** A request body as read: its text, or why there is none. */
export type BodyRead =
  | { readonly kind: 'read'; readonly text: string }
  | { readonly kind: 'too_large' }
  | { readonly kind: 'aborted' }

/**
 * Reads a request body as UTF-8 text, at most `maxBytes` of it. A larger
 * body is drained and reported as `too_large`; a client that goes away
 * midway gives `aborted`.
 */
export function readBody(
  request: IncomingMessage,
  maxBytes: number,
): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.byteLength
      if (size <= maxBytes) chunks.push(chunk)
      else resolve({ kind: 'too_large' })
    })
    request.once('end', () => {
      resolve({ kind: 'read', text: Buffer.concat(chunks).toString('utf8') })
    })
    // After 'end', 'close' changes nothing: the first resolve wins.
    request.once('error', () => resolve({ kind: 'aborted' }))
    request.once('close', () => resolve({ kind: 'aborted' }))
  })
}

/** Parses a form-encoded or JSON body; anything else is kept raw only. */
export function parseBody(
  contentType: string | undefined,
  text: string,
): ParsedBody {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  if (type === 'application/x-www-form-urlencoded') {
    return { form: formOf(text), json: null }
  }
  if (type === 'application/json' || type.endsWith('+json')) {
    return { form: null, json: jsonOrNull(text) }
  }
  return { form: null, json: null }
}

function formOf(text: string): Record<string, string[]> {
  // No prototype: a field named __proto__ or constructor is just a field.
  const form: Record<string, string[]> = Object.create(null)
  for (const [name, value] of new URLSearchParams(text)) {
    ;(form[name] ??= []).push(value)
  }
  return form
}

function jsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}

/** Writes an answer: its status, its headers and its JSON body, if any. */
export function writeAnswer(response: ServerResponse, answer: Answer): void {
  response.statusCode = answer.status
  for (const [name, value] of Object.entries(answer.headers)) {
    response.setHeader(name, value)
  }
  if (answer.body === undefined) {
    response.setHeader('Content-Length', 0)
    response.end()
    return
  }
  const text = JSON.stringify(answer.body)
  response.setHeader('Content-Type', 'application/json; charset=utf-8')
  response.setHeader('Content-Length', Buffer.byteLength(text))
  response.end(text)
}

/** A JSON answer with no special headers. */
export function jsonAnswer(
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): Answer {
  return { status, headers, body }
}
