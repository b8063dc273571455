import { Buffer } from 'node:buffer'
import ky from 'ky'
import {
  type FetchFunction,
  optionalBoolean,
  optionalFetch,
  optionalText,
  positiveInteger,
  requireBaseUrl,
  requireText,
} from './adapter-options.js'
import {
  type AttachmentFailure,
  fetchAttachment,
  type FetchedAttachment,
} from './attachments.js'
import {
  answerDetail,
  discardBody,
  failedAnswerOutcome,
  ONE_ATTEMPT,
  parleyHeaders,
  parseJsonOrUndefined,
  printable,
  readAnswerText,
  thrownOutcome,
  withoutSecret,
} from './http-outcome.js'
import type {
  OutboundMessage,
  Provider,
  ProviderOutcome,
  SendContext,
} from './provider.js'
import { checkKnownOptions } from '../util/known-options.js'

/** Options of {@link createSendGridProvider}. */
export interface SendGridProviderOptions {
  /** The provider's name, unique among providers. @default 'sendgrid' */
  readonly name?: string
  /**
   * Where the SendGrid v3 API is: SendGrid's own URL, or a compatible
   * server such as `parley mock-provider`. An http(s) URL, optionally with
   * a path prefix, without query, fragment or credentials, and not on a port
   * that fetch refuses to call (such as 6000).
   * @default 'https://api.sendgrid.com'
   */
  readonly baseUrl?: string
  /** The API key, sent as a bearer token. Never put into errors. */
  readonly apiKey: string
  /**
   * The subject of emails sent without one. SendGrid requires a subject:
   * without this, such emails fail permanently. @default none
   */
  readonly defaultSubject?: string
  /**
   * The most bytes of attachment content one email may carry, all its
   * attachments together (before base64; SendGrid's own limit is 30 MB per
   * email, encoded). @default 10485760 (10 MiB)
   */
  readonly attachmentMaxBytes?: number
  /**
   * Time to fetch all the attachments of one email, in ms. The attempt's
   * own time limit applies too. @default 10000
   */
  readonly attachmentTimeoutMs?: number
  /**
   * Whether attachments may be fetched from loopback, private, link-local
   * and other non-public addresses. @default false
   */
  readonly allowPrivateAttachmentHosts?: boolean
  /** The fetch used for the API and attachments, for tests. */
  readonly fetch?: FetchFunction
  /**
   * The fetch used for attachments only. Unless private hosts are allowed,
   * give one whose connections resolve through `publicAddressLookup`, so
   * that a host cannot pass the check before the fetch and then connect to
   * a private address (DNS rebinding); `parley serve` does.
   * @default the `fetch` option
   */
  readonly attachmentFetch?: FetchFunction
}

/** SendGrid's API URL. */
export const SENDGRID_BASE_URL = 'https://api.sendgrid.com'

interface SendGridSettings {
  readonly name: string
  readonly endpoint: string
  readonly apiKey: string
  readonly defaultSubject: string | undefined
  readonly attachmentMaxBytes: number
  readonly attachmentTimeoutMs: number
  readonly allowPrivateAttachmentHosts: boolean
  readonly fetch: FetchFunction
  readonly attachmentFetch: FetchFunction
}

/** An address as SendGrid takes it. */
interface SendGridAddress {
  email: string
  name?: string
}

/** An attachment as SendGrid takes it: the content, base64-encoded. */
interface SendGridAttachment {
  content: string
  filename: string
  type: string
  disposition: 'attachment'
}

/**
 * A provider for the `email` family that speaks SendGrid's v3 Mail Send
 * API: one JSON `POST {baseUrl}/v3/mail/send` per attempt with a bearer
 * token. The body goes as `text/html`, byte for byte; the subject is the
 * message's or `defaultSubject`; attachments are fetched from their URLs
 * (public hosts only, size and time capped) and sent as base64 content.
 * 2xx with an `X-Message-Id` is sent; 429 is rate limited; 408, 5xx and
 * network failures are transient; other answers are permanent.
 *
 * @throws TypeError or RangeError naming the option that is wrong.
 *
 * @example
 * const sendgrid = createSendGridProvider({
 *   apiKey: process.env.SENDGRID_API_KEY ?? '',
 *   defaultSubject: 'A message for you',
 * })
 */
export function createSendGridProvider(
  options: SendGridProviderOptions,
): Provider {
  checkKnownOptions('createSendGridProvider', options, [
    'name',
    'baseUrl',
    'apiKey',
    'defaultSubject',
    'attachmentMaxBytes',
    'attachmentTimeoutMs',
    'allowPrivateAttachmentHosts',
    'fetch',
    'attachmentFetch',
  ])
  const settings = sendGridSettings(options)
  return {
    name: settings.name,
    family: 'email',
    // Fetching attachments happens inside the call.
    extraTimeoutMs: settings.attachmentTimeoutMs,
    send: (message, context) => sendEmail(settings, message, context),
  }
}

function sendGridSettings(options: SendGridProviderOptions): SendGridSettings {
  const baseUrl = requireBaseUrl('baseUrl', options.baseUrl, SENDGRID_BASE_URL)
  const subject = options.defaultSubject
  const fetch = optionalFetch('fetch', options.fetch)
  return {
    name: optionalText('name', options.name, 'sendgrid'),
    endpoint: `${baseUrl}/v3/mail/send`,
    apiKey: requireText('apiKey', options.apiKey, true),
    defaultSubject:
      subject === undefined
        ? undefined
        : requireText('defaultSubject', subject),
    attachmentMaxBytes: positiveInteger(
      'attachmentMaxBytes',
      options.attachmentMaxBytes,
      10 * 1024 * 1024,
    ),
    attachmentTimeoutMs: positiveInteger(
      'attachmentTimeoutMs',
      options.attachmentTimeoutMs,
      10_000,
    ),
    allowPrivateAttachmentHosts: optionalBoolean(
      'allowPrivateAttachmentHosts',
      options.allowPrivateAttachmentHosts,
      false,
    ),
    fetch,
    attachmentFetch:
      options.attachmentFetch === undefined
        ? fetch
        : optionalFetch('attachmentFetch', options.attachmentFetch),
  }
}

async function sendEmail(
  settings: SendGridSettings,
  message: OutboundMessage,
  { attempt, signal }: SendContext,
): Promise<ProviderOutcome> {
  const subject = subjectOf(message, settings)
  if (subject === undefined) {
    return {
      kind: 'permanent',
      error: 'subject required: set SENDGRID_DEFAULT_SUBJECT',
    }
  }
  const attachments = await fetchAttachments(message, settings, signal)
  if (!Array.isArray(attachments)) return attachments

  try {
    const response = await ky.post(settings.endpoint, {
      ...ONE_ATTEMPT,
      json: mailOf(message, subject, attachments),
      headers: {
        authorization: `Bearer ${settings.apiKey}`,
        accept: 'application/json',
        ...parleyHeaders(message.id, attempt),
      },
      signal,
      fetch: settings.fetch,
    })
    return await sendGridOutcome(response, settings)
  } catch (error) {
    return thrownOutcome(error, signal)
  }
}

function subjectOf(
  message: OutboundMessage,
  settings: SendGridSettings,
): string | undefined {
  const subject = message.subject ?? ''
  return subject.trim() === '' ? settings.defaultSubject : subject
}

/** The Mail Send body. */
function mailOf(
  message: OutboundMessage,
  subject: string,
  attachments: readonly SendGridAttachment[],
) {
  return {
    personalizations: [{ to: [addressOf(message.to)] }],
    from: addressOf(message.from),
    subject,
    content: [{ type: 'text/html', value: message.body }],
    ...(attachments.length > 0 ? { attachments } : {}),
  }
}

/**
 * `Ann Lee <ann@example.com>` (the name optionally in double quotes) as
 * `{ email, name }`; a bare address as `{ email }`.
 */
export function addressOf(text: string): SendGridAddress {
  const match = /^\s*(.*?)\s*<\s*([^<>\s]+)\s*>\s*$/.exec(text)
  if (match === null) return { email: text.trim() }
  const [, rawName = '', email = ''] = match
  const name = unquote(rawName)
  return name === '' ? { email } : { email, name }
}

function unquote(name: string): string {
  const quoted = /^"(.*)"$/.exec(name)
  if (quoted === null) return name
  return (quoted[1] ?? '').replace(/\\(.)/g, '$1').trim()
}

// Fetched one after another, sharing one byte budget and one deadline, so
// that an email's attachments never take more than attachmentMaxBytes of
// memory or attachmentTimeoutMs of time, however many there are.
async function fetchAttachments(
  message: OutboundMessage,
  settings: SendGridSettings,
  signal: AbortSignal,
): Promise<SendGridAttachment[] | AttachmentFailure> {
  const urls = message.attachments
  const deadline = Date.now() + settings.attachmentTimeoutMs
  let budget = settings.attachmentMaxBytes
  const attachments: SendGridAttachment[] = []
  for (const [index, url] of urls.entries()) {
    const timeoutMs = deadline - Date.now()
    const failure = budgetFailure(budget, timeoutMs, settings)
    if (failure !== undefined) return failure

    const result = await fetchAttachment(url, {
      maxBytes: budget,
      timeoutMs,
      allowPrivate: settings.allowPrivateAttachmentHosts,
      signal,
      fetch: settings.attachmentFetch,
    })
    if (result.kind !== 'fetched') return numbered(result, index, urls.length)
    budget -= result.content.byteLength
    attachments.push(sendGridAttachment(url, result))
  }
  return attachments
}

function budgetFailure(
  budget: number,
  timeoutMs: number,
  settings: SendGridSettings,
): AttachmentFailure | undefined {
  if (budget < 1) {
    const limit = settings.attachmentMaxBytes
    return {
      kind: 'permanent',
      error: `attachments: more than ${limit} bytes in all`,
    }
  }
  if (timeoutMs < 1) {
    const limit = settings.attachmentTimeoutMs
    return {
      kind: 'transient',
      error: `attachments: not all fetched in ${limit} ms`,
    }
  }
  return undefined
}

function numbered(
  failure: AttachmentFailure,
  index: number,
  count: number,
): AttachmentFailure {
  if (count === 1 || failure.error === 'aborted') return failure
  const error = failure.error.replace(/^attachment /, '')
  return { ...failure, error: `attachment ${index + 1} of ${count}, ${error}` }
}

function sendGridAttachment(
  url: string,
  fetched: FetchedAttachment,
): SendGridAttachment {
  const { content } = fetched
  const bytes = Buffer.from(
    content.buffer,
    content.byteOffset,
    content.byteLength,
  )
  return {
    content: bytes.toString('base64'),
    filename: attachmentFilename(url, fetched.url),
    type: mediaTypeOf(fetched.contentType),
    disposition: 'attachment',
  }
}

/**
 * A file name for an attachment: the last segment of the URL's path (the
 * URL as given, else the one it redirected to), percent-decoded, with path
 * separators, control and reserved characters replaced and leading dots
 * removed, at most 100 characters; `attachment` when nothing is left.
 */
export function attachmentFilename(given: string, final?: URL): string {
  for (const url of [given, final?.href]) {
    const name = url === undefined ? '' : safeName(lastSegment(url))
    if (name !== '') return name
  }
  return 'attachment'
}

function lastSegment(text: string): string {
  let path: string
  try {
    path = new URL(text).pathname
  } catch {
    return ''
  }
  const segment = path.slice(path.lastIndexOf('/') + 1)
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

function safeName(segment: string): string {
  const name = segment
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f<>:"/\\|?*]/g, '_')
    .replace(/^[\s.]+|\s+$/g, '')
  if (name.length <= 100) return name
  const extension = /\.[^.]{1,10}$/.exec(name)?.[0] ?? ''
  return name.slice(0, 100 - extension.length) + extension
}

const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/

/** The media type of a `Content-Type` header, parameters dropped. */
function mediaTypeOf(contentType: string | null): string {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  return MEDIA_TYPE.test(type) ? type : 'application/octet-stream'
}

async function sendGridOutcome(
  response: Response,
  settings: SendGridSettings,
): Promise<ProviderOutcome> {
  if (response.ok) return sentOrTransient(response, settings)

  // Redact before anything is cut short, or a cut could leave part of it.
  const text = withoutSecret(await readAnswerText(response), settings.apiKey)
  const said = sendGridErrorText(parseJsonOrUndefined(text), text)
  const detail = answerDetail(settings.name, response.status, said)
  return failedAnswerOutcome(
    response.status,
    withoutSecret(detail, settings.apiKey),
    response.headers.get('retry-after'),
  )
}

function sentOrTransient(
  response: Response,
  settings: SendGridSettings,
): ProviderOutcome {
  discardBody(response)
  const id = response.headers.get('x-message-id')?.trim() ?? ''
  if (id !== '') return { kind: 'sent', providerMessageId: id }
  return {
    kind: 'transient',
    error: `${settings.name} answered HTTP ${response.status} without X-Message-Id`,
  }
}

// SendGrid's errors are JSON: { errors: [{ message, field, help }] }.
function sendGridErrorText(json: unknown, text: string): string {
  const errors = (json as { errors?: unknown } | undefined)?.errors
  if (!Array.isArray(errors)) {
    return json === undefined ? printable(text, 120) : ''
  }
  return errors
    .slice(0, 3)
    .map((error) => sendGridErrorEntry(error))
    .filter((entry) => entry !== '')
    .join('; ')
}

function sendGridErrorEntry(error: unknown): string {
  const { message, field } = (error ?? {}) as {
    message?: unknown
    field?: unknown
  }
  if (typeof message !== 'string') return ''
  const where = typeof field === 'string' ? ` (${printable(field, 40)})` : ''
  return `${printable(message, 160)}${where}`
}
