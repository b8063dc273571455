import { createHmac } from 'node:crypto'
import { constantTimeEqual, sha256 } from './constant-time.js'
import { urlVariants } from './twilio-url-variants.js'
import { ACCEPTED, rejected, type Verification } from './verification.js'

/** The header Twilio signs its webhooks with (lower-case, as in Node). */
export const TWILIO_SIGNATURE_HEADER = 'x-twilio-signature'

/**
 * Form parameters of a Twilio request. Pass every value of a repeated name:
 * `URLSearchParams` over the raw body does, while a first-value object such
 * as `parseForm`'s does not and would fail the check for repeated names.
 */
export type TwilioParams =
  URLSearchParams | Readonly<Record<string, string | readonly string[]>>

/** A request as Twilio signs it. */
export interface TwilioRequest {
  /** The full URL Twilio called, query included (see `publicUrl`). */
  readonly url: string
  /**
   * The `Content-Type` header. `application/x-www-form-urlencoded` means a
   * signed form; anything else means a body checked by `bodySHA256`.
   */
  readonly contentType: string | undefined
  /** The form's parameters; for forms, read from `rawBody` when absent. */
  readonly form?: TwilioParams
  /** The body exactly as received (required for non-form bodies). */
  readonly rawBody?: Uint8Array
}

/** What {@link verifyTwilioSignature} needs. */
export interface VerifyTwilioOptions extends TwilioRequest {
  /** `WEBHOOK_SMS_AUTH_TOKEN`: the Twilio account's auth token. */
  readonly authToken: string
  /** The `X-Twilio-Signature` header. */
  readonly signature: string | undefined
}

/** What {@link signTwilioRequest} needs. */
export interface SignTwilioOptions extends TwilioRequest {
  /** The auth token to sign with. */
  readonly authToken: string
}

/** Why a Twilio signature was refused. */
export type TwilioFailure =
  | 'missing_signature'
  | 'malformed_signature'
  | 'signature_mismatch'
  | 'missing_body_hash'
  | 'body_hash_mismatch'

// Base64 of an HMAC-SHA1 digest: 20 bytes, 27 characters and one '='.
const SIGNATURE_FORMAT = /^[A-Za-z0-9+/]{27}=$/

const FORM_TYPE = 'application/x-www-form-urlencoded'

/**
 * Checks `X-Twilio-Signature` as Twilio computes it
 * (https://www.twilio.com/docs/usage/webhooks/webhooks-security):
 * base64(HMAC-SHA1(authToken, url + params)), where params concatenates
 * every form parameter as name + value, names sorted, and the values of a
 * repeated name de-duplicated and sorted. A JSON body is not part of the
 * signed string: Twilio signs the URL only and puts the body's hex SHA-256
 * in its `bodySHA256` query parameter, which must match the raw body.
 *
 * Like Twilio's own helper library, the URL is tried as received and as
 * WHATWG-normalized (plus its legacy `querystring` re-encoding), each with
 * and without the port, since Twilio may sign `https://host:443/...` or
 * `https://host/...`. Every comparison is constant-time.
 *
 * @throws TypeError when the request lacks what its content type needs:
 *   `form` or `rawBody` for a form, `rawBody` otherwise.
 */
export function verifyTwilioSignature(
  options: VerifyTwilioOptions,
): Verification<TwilioFailure> {
  const form = isFormType(options.contentType)
  const params = form ? paramString(formOf(options)) : ''
  const body = form ? undefined : bodyOf(options)

  const signature = options.signature?.trim() ?? ''
  if (signature === '') {
    return rejected('missing_signature', 'the X-Twilio-Signature is missing')
  }
  if (!SIGNATURE_FORMAT.test(signature)) {
    return rejected(
      'malformed_signature',
      'the X-Twilio-Signature is malformed',
    )
  }

  if (!signsAnyUrl(options.authToken, signature, options.url, params)) {
    return rejected('signature_mismatch', 'the X-Twilio-Signature is not valid')
  }
  return body === undefined ? ACCEPTED : checkBodyHash(options.url, body)
}

/**
 * Signs a request as Twilio would, for tests and for the CLI's test
 * webhooks. A form is signed over the URL and its parameters. Any other
 * body gets its hex SHA-256 appended to the URL as `bodySHA256`, and the
 * URL alone is signed: send the request to the returned `url`.
 *
 * @throws TypeError when a non-form body is missing, or the URL already
 *   carries `bodySHA256` or a fragment.
 */
export function signTwilioRequest(options: SignTwilioOptions): {
  readonly url: string
  readonly signature: string
} {
  if (isFormType(options.contentType)) {
    const params = paramString(formOf(options))
    return {
      url: options.url,
      signature: hmacSha1(options.authToken, options.url + params),
    }
  }
  const url = withBodyHash(options.url, twilioBodyHash(bodyOf(options)))
  return { url, signature: hmacSha1(options.authToken, url) }
}

/**
 * The bare signature of a URL and parameters: base64(HMAC-SHA1(authToken,
 * url + sorted params)), without the body hash or URL variants.
 */
export function twilioSignature(
  authToken: string,
  url: string,
  params: TwilioParams = {},
): string {
  return hmacSha1(authToken, url + paramString(params))
}

/** The `bodySHA256` value of a body: its SHA-256 in lower-case hex. */
export function twilioBodyHash(rawBody: Uint8Array): string {
  return sha256(rawBody).toString('hex')
}

function hmacSha1(authToken: string, data: string): string {
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64')
}

function isFormType(contentType: string | undefined): boolean {
  const media = contentType?.split(';')[0]?.trim().toLowerCase()
  return media === FORM_TYPE
}

function formOf(request: TwilioRequest): TwilioParams {
  if (request.form !== undefined) return request.form
  if (request.rawBody === undefined) {
    throw new TypeError('a Twilio form needs form or rawBody')
  }
  return new URLSearchParams(Buffer.from(request.rawBody).toString('utf8'))
}

function bodyOf(request: TwilioRequest): Uint8Array {
  if (request.rawBody === undefined) {
    throw new TypeError('a Twilio request that is not a form needs rawBody')
  }
  return request.rawBody
}

// Names sorted, then each name's distinct values sorted, each written as
// name + value with no separator, as Twilio's helper libraries do. The sort
// is JavaScript's (UTF-16 code units), like twilio-node's; it differs from
// code-point order only between astral and U+E000..U+FFFF characters.
function paramString(params: TwilioParams): string {
  const grouped = groupParams(params)
  let data = ''
  for (const name of [...grouped.keys()].sort()) {
    const values = [...new Set(grouped.get(name))].sort()
    for (const value of values) data += name + value
  }
  return data
}

function groupParams(params: TwilioParams): Map<string, string[]> {
  const entries =
    params instanceof URLSearchParams ? [...params] : Object.entries(params)
  const grouped = new Map<string, string[]>()
  for (const [name, value] of entries) {
    const values = grouped.get(name) ?? []
    values.push(...(typeof value === 'string' ? [value] : value))
    grouped.set(name, values)
  }
  return grouped
}

// Every candidate is computed and compared: which variant matched must not
// show in the timing, and there are at most six.
function signsAnyUrl(
  authToken: string,
  signature: string,
  url: string,
  params: string,
): boolean {
  let match = false
  for (const candidate of urlVariants(url)) {
    const expected = hmacSha1(authToken, candidate + params)
    match = constantTimeEqual(expected, signature) || match
  }
  return match
}

function checkBodyHash(
  url: string,
  rawBody: Uint8Array,
): Verification<TwilioFailure> {
  const signed = queryParam(url, 'bodySHA256')
  if (signed === undefined) {
    return rejected('missing_body_hash', 'the URL carries no bodySHA256')
  }
  if (!constantTimeEqual(signed, twilioBodyHash(rawBody))) {
    return rejected('body_hash_mismatch', 'the body does not match bodySHA256')
  }
  return ACCEPTED
}

function queryParam(url: string, name: string): string | undefined {
  const start = url.indexOf('?')
  if (start === -1) return undefined
  const query = url.slice(start + 1).split('#')[0]
  const value = new URLSearchParams(query).get(name)
  return value === null || value === '' ? undefined : value
}

function withBodyHash(url: string, hash: string): string {
  if (url.includes('#')) {
    throw new TypeError('a URL to sign must not have a fragment')
  }
  if (queryParam(url, 'bodySHA256') !== undefined) {
    throw new TypeError('the URL to sign already carries bodySHA256')
  }
  const separator = !url.includes('?') ? '?' : /[?&]$/.test(url) ? '' : '&'
  return `${url}${separator}bodySHA256=${hash}`
}
