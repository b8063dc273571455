import type { IncomingMessage } from 'node:http'
import { HttpError } from './http-error.js'

/** Media types a request body may have on a route. */
export type BodyType = 'json' | 'form'

interface MediaRange {
  readonly type: string
  readonly subtype: string
  readonly q: number
}

/**
 * Refuses with 406 when `Accept` rules out JSON. A missing header, `*\/*`,
 * `application/*` and `application/json` (with any q above 0) allow it.
 */
export function checkAcceptsJson(request: IncomingMessage): void {
  const header = request.headers.accept
  if (header === undefined || header.trim() === '') return
  if (jsonQuality(header) > 0) return
  throw new HttpError(
    'not_acceptable',
    'this endpoint answers application/json only; allow it in Accept',
  )
}

/**
 * The quality `Accept` gives to the media type `type/subtype`: the q of
 * the most specific range that covers it (RFC 9110 section 12.5.1), so
 * that `application/json;q=0, *\/*` rules JSON out; among ranges equally
 * specific (the same type with other parameters) the highest q counts.
 * A missing or empty header accepts everything (1).
 */
export function acceptQuality(
  header: string | undefined,
  type: string,
  subtype: string,
): number {
  if (header === undefined || header.trim() === '') return 1
  const specificity = (range: MediaRange) => {
    if (range.type === type && range.subtype === subtype) return 3
    if (range.type === type && range.subtype === '*') return 2
    if (range.type === '*' && range.subtype === '*') return 1
    return 0
  }
  let best = 0
  let quality = 0
  for (const range of parseAccept(header)) {
    const rank = specificity(range)
    if (rank > best) [best, quality] = [rank, range.q]
    else if (rank > 0 && rank === best) quality = Math.max(quality, range.q)
  }
  return quality
}

function jsonQuality(header: string): number {
  return acceptQuality(header, 'application', 'json')
}

function parseAccept(header: string): MediaRange[] {
  return header.split(',').flatMap((part) => {
    const [media = '', ...params] = part.split(';').map((item) => item.trim())
    const [type, subtype] = media.toLowerCase().split('/')
    if (!type || !subtype) return []
    return [{ type, subtype, q: qualityOf(params) }]
  })
}

// A q that is not a qvalue of RFC 9110 section 12.4.2 (0 to 1, at most
// three decimals: `q=1.5`, `q=-1`, `q=abc`) is ignored, as an unknown
// parameter would be: the range keeps the default weight, 1. One rule,
// wherever Accept is read.
function qualityOf(params: readonly string[]): number {
  for (const param of params) {
    const [name, value = ''] = param.split('=').map((item) => item.trim())
    if (name?.toLowerCase() === 'q' && QVALUE.test(value)) return Number(value)
  }
  return 1
}

const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/**
 * Reads the body's media type and checks it is one the route takes, in
 * UTF-8 (the only charset accepted), each parameter given once. Throws 415
 * otherwise.
 */
export function checkContentType(
  request: IncomingMessage,
  accepted: readonly BodyType[],
): BodyType {
  const header = request.headers['content-type'] ?? ''
  // The usual header, without parameters to look at.
  if (header === 'application/json' && accepted.includes('json')) return 'json'
  const [media = '', ...params] = header.split(';').map((item) => item.trim())
  const type = bodyTypeOf(media.toLowerCase())
  if (type === undefined || !accepted.includes(type))
    throw unsupported(accepted)
  const named = params
    .filter((param) => param !== '')
    .map((param) => param.split('='))
    .map(([name = '', value]) => [name.trim().toLowerCase(), value] as const)
  refuseRepeatedParameter(named.map(([name]) => name))
  const charset = named.find(([name]) => name === 'charset')?.[1]
  if (charset === undefined || /^"?utf-?8"?$/i.test(charset.trim())) return type
  throw unsupported(accepted)
}

function unsupported(accepted: readonly BodyType[]): HttpError {
  return new HttpError(
    'unsupported_media_type',
    `send the body as ${accepted.map(describe).join(' or ')} in UTF-8`,
  )
}

// Two values of one parameter (`charset=utf-8; charset=latin1`) leave the
// body's reading ambiguous, and another parser may pick the other one:
// refused as an unsupported type rather than resolved by a guess.
function refuseRepeatedParameter(names: readonly string[]): void {
  const repeated = names.find((name, i) => names.indexOf(name) !== i)
  if (repeated === undefined) return
  // Named only when it is a short token: the message echoes the client.
  const which = /^[\w!#$%&'*+.^`|~-]{1,40}$/.test(repeated)
    ? `its ${repeated} parameter`
    : 'a parameter'
  throw new HttpError(
    'unsupported_media_type',
    `the Content-Type repeats ${which}; send each parameter once`,
  )
}

function bodyTypeOf(media: string): BodyType | undefined {
  if (media === 'application/json') return 'json'
  if (media === 'application/x-www-form-urlencoded') return 'form'
  return undefined
}

function describe(type: BodyType): string {
  return type === 'json'
    ? 'application/json'
    : 'application/x-www-form-urlencoded'
}
