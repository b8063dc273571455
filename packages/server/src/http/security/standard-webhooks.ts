import { createHmac, randomUUID } from 'node:crypto'
import { constantTimeEqual } from './constant-time.js'
import {
  checkTimestamp,
  checkTolerance,
  DEFAULT_TOLERANCE_SECONDS,
  type TimestampFailure,
} from './timestamp-window.js'
import {
  ACCEPTED,
  type HeaderBag,
  rejected,
  singleHeader,
  type Verification,
} from './verification.js'

/** The three headers of the Standard Webhooks scheme (lower-case). */
export const STANDARD_WEBHOOK_HEADERS = Object.freeze({
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
})

/** What {@link verifyStandardWebhook} needs. */
export interface VerifyStandardWebhookOptions {
  /** `WEBHOOK_EMAIL_SECRET`; see `standardWebhookKey`. */
  readonly secret: string
  /** The request headers (`request.headers`). */
  readonly headers: HeaderBag
  /** The body exactly as received. */
  readonly rawBody: Uint8Array
  /** The current time in ms since the epoch. @default Date.now */
  readonly now?: () => number
  /**
   * How far `webhook-timestamp` may lie from now, in seconds, in either
   * direction; a non-negative integer.
   *
   * @default 300
   */
  readonly toleranceSeconds?: number
}

/** What {@link signStandardWebhook} needs. */
export interface SignStandardWebhookOptions {
  /** The secret to sign with; see `standardWebhookKey`. */
  readonly secret: string
  /** The body to send, exactly as it will be sent. */
  readonly rawBody: Uint8Array | string
  /** The message id. @default `msg_` and a random UUID */
  readonly id?: string
  /** The signing time in unix seconds. @default the current time */
  readonly timestamp?: number
}

/** Why a Standard Webhooks signature was refused. */
export type StandardWebhookFailure =
  'missing_headers' | TimestampFailure | 'signature_mismatch'

const SECRET_PREFIX = 'whsec_'

const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/

/**
 * Checks a webhook signed with the Standard Webhooks scheme
 * (https://www.standardwebhooks.com/): `webhook-signature` holds
 * space-separated `v1,<base64>` entries, any one of which may match
 * base64(HMAC-SHA256(key, `${webhook-id}.${webhook-timestamp}.${body}`)).
 * Entries of other versions are ignored. The timestamp (unix seconds) must
 * lie within the tolerance of `now()` in both directions, which bounds how
 * long a captured request can be replayed. Comparisons are constant-time.
 *
 * @throws RangeError when the secret or the tolerance is invalid (check the
 *   secret once at start with `standardWebhookKey`).
 */
export function verifyStandardWebhook(
  options: VerifyStandardWebhookOptions,
): Verification<StandardWebhookFailure> {
  const key = standardWebhookKey(options.secret)
  const tolerance = checkTolerance(
    options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
  )
  const signed = signedHeaders(options.headers)
  if (signed === undefined) {
    return rejected(
      'missing_headers',
      'the webhook signature headers are missing',
    )
  }

  const timestamp = checkTimestamp(
    signed.timestamp,
    (options.now ?? Date.now)(),
    tolerance,
  )
  if (typeof timestamp !== 'number') return timestamp

  const expected = hmacSha256(key, signed.id, timestamp, options.rawBody)
  if (!anySignatureMatches(signed.signatures, expected)) {
    return rejected('signature_mismatch', 'the webhook signature is not valid')
  }
  return ACCEPTED
}

/**
 * Signs a body with the Standard Webhooks scheme, for tests and for the
 * CLI's test webhooks. Returns the three headers to send with it.
 *
 * @throws RangeError when the secret is invalid.
 */
export function signStandardWebhook(
  options: SignStandardWebhookOptions,
): Readonly<
  Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string>
> {
  const key = standardWebhookKey(options.secret)
  const id = options.id ?? `msg_${randomUUID()}`
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000)
  const body =
    typeof options.rawBody === 'string'
      ? Buffer.from(options.rawBody, 'utf8')
      : options.rawBody
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${hmacSha256(key, id, timestamp, body)}`,
  }
}

/**
 * The HMAC key of a secret. A secret of the form `whsec_<base64>` (how
 * Standard Webhooks senders such as Svix hand them out) is base64-decoded;
 * any other secret is used as its UTF-8 bytes. That second rule is
 * Parley's: the reference libraries base64-decode unprefixed secrets too,
 * so give a sender's base64 secret with its `whsec_` prefix.
 *
 * @throws RangeError when a `whsec_` secret is not valid base64 or empty,
 *   or the secret is empty. The message never quotes the secret.
 */
export function standardWebhookKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) {
    if (secret === '') throw new RangeError('the webhook secret is empty')
    return Buffer.from(secret, 'utf8')
  }
  const encoded = secret.slice(SECRET_PREFIX.length)
  if (encoded === '' || !BASE64.test(encoded)) {
    throw new RangeError('the whsec_ webhook secret is not valid base64')
  }
  return Buffer.from(encoded, 'base64')
}

function signedHeaders(headers: HeaderBag):
  | {
      readonly id: string
      readonly timestamp: string
      readonly signatures: string
    }
  | undefined {
  const names = STANDARD_WEBHOOK_HEADERS
  const id = singleHeader(headers, names.id)
  const timestamp = singleHeader(headers, names.timestamp)
  const signatures = singleHeader(headers, names.signature)
  if (id === undefined || timestamp === undefined) return undefined
  return signatures === undefined ? undefined : { id, timestamp, signatures }
}

function hmacSha256(
  key: Buffer,
  id: string,
  timestamp: number,
  body: Uint8Array,
): string {
  return createHmac('sha256', key)
    .update(`${id}.${timestamp}.`, 'utf8')
    .update(body)
    .digest('base64')
}

// Every entry is compared, whatever matched before. An entry is
// `version,signature`; only v1 counts. Signatures are compared as base64
// text, as the reference implementations do.
function anySignatureMatches(list: string, expected: string): boolean {
  let match = false
  for (const entry of list.split(' ')) {
    const comma = entry.indexOf(',')
    if (comma === -1 || entry.slice(0, comma) !== 'v1') continue
    match = constantTimeEqual(entry.slice(comma + 1), expected) || match
  }
  return match
}
