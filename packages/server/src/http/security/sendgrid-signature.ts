import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'
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

/** The headers of SendGrid's signed Event Webhook (lower-case). */
export const SENDGRID_SIGNATURE_HEADERS = Object.freeze({
  signature: 'x-twilio-email-event-webhook-signature',
  timestamp: 'x-twilio-email-event-webhook-timestamp',
})

/** What {@link verifySendGridSignature} needs. */
export interface VerifySendGridOptions {
  /**
   * `WEBHOOK_SENDGRID_PUBLIC_KEY`, parsed once with
   * {@link parseSendGridPublicKey} (text is parsed on every call).
   */
  readonly publicKey: KeyObject | string
  /** The request headers (`request.headers`). */
  readonly headers: HeaderBag
  /** The body exactly as received. */
  readonly rawBody: Uint8Array
  /** The current time in ms since the epoch. @default Date.now */
  readonly now?: () => number
  /**
   * How far the signed timestamp may lie from now, in seconds, in either
   * direction; a non-negative integer.
   *
   * @default 300
   */
  readonly toleranceSeconds?: number
}

/** What {@link signSendGridRequest} needs. */
export interface SignSendGridOptions {
  /** A P-256 private key, say from {@link generateSendGridKeyPair}. */
  readonly privateKey: KeyObject
  /** The body to send, exactly as it will be sent. */
  readonly rawBody: Uint8Array | string
  /** The signing time in unix seconds. @default the current time */
  readonly timestamp?: number
}

/** A key pair for signing test events, the public half as SendGrid shows it. */
export interface SendGridKeyPair {
  /** Signs the test webhooks. */
  readonly privateKey: KeyObject
  /** Base64 DER SubjectPublicKeyInfo, the form SendGrid's console shows. */
  readonly publicKey: string
}

/** Why a SendGrid signature was refused. */
export type SendGridFailure =
  | 'missing_headers'
  | TimestampFailure
  | 'malformed_signature'
  | 'signature_mismatch'

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Checks SendGrid's Event Webhook signature
 * (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features):
 * an ECDSA P-256 / SHA-256 signature, base64 DER, over the timestamp
 * header's text followed by the raw body bytes.
 *
 * SendGrid documents no freshness rule; Parley refuses timestamps more
 * than `toleranceSeconds` (five minutes) from now in either direction, as
 * for the Standard Webhooks scheme, so a captured callback cannot be
 * replayed later. A public-key signature leaks nothing through timing, so
 * no constant-time comparison is needed here.
 *
 * @throws RangeError when the key text or the tolerance is invalid.
 */
export function verifySendGridSignature(
  options: VerifySendGridOptions,
): Verification<SendGridFailure> {
  const key = keyOf(options.publicKey)
  const tolerance = checkTolerance(
    options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
  )
  const names = SENDGRID_SIGNATURE_HEADERS
  const signature = singleHeader(options.headers, names.signature)
  const stamp = singleHeader(options.headers, names.timestamp)
  if (signature === undefined || stamp === undefined) {
    return rejected(
      'missing_headers',
      'the SendGrid signature headers are missing',
    )
  }

  const fresh = checkTimestamp(stamp, (options.now ?? Date.now)(), tolerance)
  if (typeof fresh !== 'number') return fresh
  if (!BASE64.test(signature)) {
    return rejected(
      'malformed_signature',
      'the SendGrid signature is malformed',
    )
  }

  const signed = Buffer.concat([Buffer.from(stamp, 'utf8'), options.rawBody])
  if (!ecdsaVerifies(key, signed, Buffer.from(signature, 'base64'))) {
    return rejected('signature_mismatch', 'the SendGrid signature is not valid')
  }
  return ACCEPTED
}

/**
 * Parses SendGrid's verification key: base64 DER SubjectPublicKeyInfo, as
 * SendGrid's console shows it, or the same key as PEM.
 *
 * @throws RangeError when the text is not a P-256 public key (a private
 *   key is refused too, so it is not kept in the server's configuration).
 */
export function parseSendGridPublicKey(text: string): KeyObject {
  const trimmed = text.trim()
  if (trimmed.includes('PRIVATE KEY')) {
    throw new RangeError(
      'the SendGrid key is a private key; give the public key',
    )
  }
  const key = decodePublicKey(trimmed)
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new RangeError('the SendGrid key is not an ECDSA P-256 public key')
  }
  return key
}

/**
 * Makes a P-256 key pair for signing test events (tests and the CLI):
 * configure the server with `publicKey`, sign with `privateKey`.
 */
export function generateSendGridKeyPair(): SendGridKeyPair {
  const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const der = pair.publicKey.export({ format: 'der', type: 'spki' })
  return { privateKey: pair.privateKey, publicKey: der.toString('base64') }
}

/**
 * Signs a body as SendGrid does. Returns the two headers to send with it.
 */
export function signSendGridRequest(
  options: SignSendGridOptions,
): Readonly<
  Record<
    | 'x-twilio-email-event-webhook-signature'
    | 'x-twilio-email-event-webhook-timestamp',
    string
  >
> {
  const stamp = String(options.timestamp ?? Math.floor(Date.now() / 1000))
  const body =
    typeof options.rawBody === 'string'
      ? Buffer.from(options.rawBody, 'utf8')
      : options.rawBody
  const signed = Buffer.concat([Buffer.from(stamp, 'utf8'), body])
  const signature = sign('sha256', signed, {
    key: options.privateKey,
    dsaEncoding: 'der',
  })
  return {
    'x-twilio-email-event-webhook-signature': signature.toString('base64'),
    'x-twilio-email-event-webhook-timestamp': stamp,
  }
}

function keyOf(publicKey: KeyObject | string): KeyObject {
  return typeof publicKey === 'string'
    ? parseSendGridPublicKey(publicKey)
    : publicKey
}

function decodePublicKey(text: string): KeyObject {
  try {
    if (text.startsWith('-----BEGIN')) return createPublicKey(text)
    const der = text.replace(/\s+/g, '')
    if (!BASE64.test(der)) throw new TypeError('not base64')
    return createPublicKey({
      key: Buffer.from(der, 'base64'),
      format: 'der',
      type: 'spki',
    })
  } catch {
    throw new RangeError('the SendGrid key is neither base64 DER nor PEM')
  }
}

// OpenSSL may throw on a signature that is not valid DER instead of
// answering false; either way the request is refused.
function ecdsaVerifies(
  key: KeyObject,
  data: Buffer,
  signature: Buffer,
): boolean {
  try {
    return verify('sha256', data, { key, dsaEncoding: 'der' }, signature)
  } catch {
    return false
  }
}
