import { HttpError } from './http-error.js'
import { parseJsonText } from './json-body.js'
import type { BodyType } from './negotiate.js'

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/** Decodes a body as strict UTF-8; a leading BOM is dropped. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes)
  } catch {
    throw new HttpError('invalid_json', 'the request body is not valid UTF-8')
  }
}

/**
 * Parses a JSON body (strict UTF-8, BOM ignored) with the strict rules of
 * {@link parseJsonText}, or throws 400 invalid_json.
 */
export function parseJson(bytes: Uint8Array): unknown {
  const text = decodeUtf8(bytes)
  if (text.trim() === '') {
    throw new HttpError('invalid_json', 'the request body is empty')
  }
  return parseJsonText(text)
}

/** Parses a body of the given type into a plain object or value. */
export function parseBody(bytes: Uint8Array, type: BodyType): unknown {
  if (type === 'json') return parseJson(bytes)
  return parseForm(bytes)
}

/**
 * Parses an urlencoded form into an object of its first values. Each name
 * and value must decode to valid UTF-8: `%FF` is refused rather than turned
 * into U+FFFD, so that what is stored is what was sent.
 */
export function parseForm(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = Object.create(null)
  const text = decodeFormBytes(bytes)
  if (text === '') return out
  for (const pair of text.split('&')) {
    if (pair === '') continue
    const at = pair.indexOf('=')
    const name = decodeFormPart(at < 0 ? pair : pair.slice(0, at))
    const value = at < 0 ? '' : decodeFormPart(pair.slice(at + 1))
    if (!(name in out)) out[name] = value
  }
  return out
}

function decodeFormBytes(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes)
  } catch {
    throw formError()
  }
}

function formError(): HttpError {
  return new HttpError(
    'validation_failed',
    'the form body is not valid UTF-8',
    {},
    [{ field: '(body)', message: 'must be valid UTF-8 form data' }],
  )
}

function decodeFormPart(part: string): string {
  try {
    return decodeURIComponent(part.replaceAll('+', ' '))
  } catch {
    throw formError()
  }
}
