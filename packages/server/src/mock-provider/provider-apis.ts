import { randomBytes } from 'node:crypto'
import { type IncomingHttpHeaders, STATUS_CODES } from 'node:http'
import type { MockFamily } from './behaviour.js'

/** The credentials the mock server accepts. */
export interface MockCredentials {
  /** Twilio account SID: the basic-auth user and part of the path. */
  readonly accountSid: string
  /** Twilio auth token: the basic-auth password. */
  readonly authToken: string
  /** SendGrid API key: the bearer token. */
  readonly apiKey: string
}

/** A request body, parsed as its `Content-Type` says. */
export interface ParsedBody {
  readonly form: Readonly<Record<string, readonly string[]>> | null
  readonly json: unknown
}

/** An answer to send: status, headers and a JSON body (or none). */
export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Sent as JSON; `undefined` sends an empty body. */
  readonly body: unknown
}

/** One provider API the mock server speaks. */
export interface MockApi {
  readonly family: MockFamily
  /** Whether a request path (without query) belongs to this API. */
  matches(path: string): boolean
  /** Whether the request carries the right credentials. */
  authorized(headers: IncomingHttpHeaders): boolean
  /** An error answer when the path names another account. */
  wrongAccount(path: string): Answer | undefined
  /** A 400 answer when the request lacks what the provider requires. */
  invalid(body: ParsedBody): Answer | undefined
  /** The provider's success answer, with its usual or a forced status. */
  success(body: ParsedBody, status?: number): Answer
  /** An error answer in the provider's own format. */
  error(status: number): Answer
}

const TWILIO_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/

// Twilio's error codes for the statuses the mock answers with.
const TWILIO_ERRORS: Readonly<Record<number, [number, string]>> = {
  400: [21211, "The 'To' number is not a valid phone number."],
  401: [20003, 'Authenticate'],
  404: [20404, 'The requested resource was not found'],
  429: [20429, 'Too Many Requests'],
  500: [20500, 'Internal Server Error'],
  503: [20503, 'Service Unavailable'],
}

/** Twilio's Messages API: basic auth, form in, 201 with a JSON message. */
export function twilioApi(credentials: MockCredentials): MockApi {
  const expected = basic(credentials.accountSid, credentials.authToken)
  return {
    family: 'sms',
    matches: (path) => TWILIO_PATH.test(path),
    authorized: (headers) => headers.authorization === expected,
    wrongAccount: (path) =>
      TWILIO_PATH.exec(path)?.[1] === credentials.accountSid
        ? undefined
        : twilioError(404),
    invalid: (body) => invalidTwilio(body.form ?? {}),
    success: (body, status = 201) =>
      twilioMessage(credentials.accountSid, body.form ?? {}, status),
    error: twilioError,
  }
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

function twilioError(status: number, detail?: [number, string]): Answer {
  const [code, message] = detail ??
    TWILIO_ERRORS[status] ?? [20_000 + status, STATUS_CODES[status] ?? 'Error']
  return {
    status,
    headers: {},
    body: {
      code,
      message,
      more_info: `https://www.twilio.com/docs/errors/${code}`,
      status,
    },
  }
}

function invalidTwilio(
  form: Readonly<Record<string, readonly string[]>>,
): Answer | undefined {
  const first = (name: string) => form[name]?.[0] ?? ''
  if (first('To') === '') {
    return twilioError(400, [21604, "A 'To' phone number is required."])
  }
  if (first('From') === '') {
    return twilioError(400, [21603, "A 'From' phone number is required."])
  }
  if (first('Body') === '' && (form.MediaUrl ?? []).length === 0) {
    return twilioError(400, [21602, 'Message body is required.'])
  }
  return undefined
}

function twilioMessage(
  accountSid: string,
  form: Readonly<Record<string, readonly string[]>>,
  status: number,
): Answer {
  const sid = `SM${randomBytes(16).toString('hex')}`
  const now = new Date().toUTCString().replace('GMT', '+0000')
  const body = {
    sid,
    account_sid: accountSid,
    to: form.To?.[0] ?? null,
    from: form.From?.[0] ?? null,
    body: form.Body?.[0] ?? '',
    status: 'queued',
    num_media: String(form.MediaUrl?.length ?? 0),
    num_segments: '1',
    direction: 'outbound-api',
    api_version: '2010-04-01',
    date_created: now,
    date_updated: now,
    date_sent: null,
    error_code: null,
    error_message: null,
    price: null,
    uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
  }
  return { status, headers: {}, body }
}

const SENDGRID_ERRORS: Readonly<Record<number, [string, string | null]>> = {
  400: ['The from email does not contain a valid address.', 'from.email'],
  401: [
    'The provided authorization grant is invalid, expired, or revoked',
    null,
  ],
  429: ['too many requests', null],
}

/** SendGrid's Mail Send API: bearer token, JSON in, 202 with an id. */
export function sendGridApi(credentials: MockCredentials): MockApi {
  const expected = `Bearer ${credentials.apiKey}`
  return {
    family: 'email',
    matches: (path) => path === '/v3/mail/send',
    authorized: (headers) => headers.authorization === expected,
    wrongAccount: () => undefined,
    invalid: (body) => invalidMail(body.json),
    success: (_body, status = 202) => ({
      status,
      headers: { 'X-Message-Id': randomBytes(16).toString('base64url') },
      body: undefined,
    }),
    error: (status) => {
      const [message, field] = SENDGRID_ERRORS[status] ?? [
        (STATUS_CODES[status] ?? 'error').toLowerCase(),
        null,
      ]
      return sendGridError(status, message, field)
    },
  }
}

function sendGridError(
  status: number,
  message: string,
  field: string | null,
): Answer {
  return {
    status,
    headers: {},
    body: { errors: [{ message, field, help: null }] },
  }
}

type Mail = Record<string, unknown>

// The fields SendGrid requires, in the order it reports them.
const MAIL_CHECKS: readonly (readonly [
  field: string,
  message: string,
  ok: (mail: Mail) => boolean,
])[] = [
  [
    'personalizations',
    'At least one personalization with a "to" address is required.',
    (mail) => listOf(mail.personalizations, hasRecipient),
  ],
  [
    'from.email',
    'The from object with an email is required.',
    (mail) => isRecord(mail.from) && nonEmpty(mail.from.email),
  ],
  ['subject', 'The subject is required.', (mail) => nonEmpty(mail.subject)],
  [
    'content',
    'At least one content block with a value is required.',
    (mail) => listOf(mail.content, (block) => nonEmpty(block.value)),
  ],
  [
    'attachments',
    'Every attachment needs content and a filename.',
    (mail) =>
      mail.attachments === undefined ||
      listOf(
        mail.attachments,
        (a) => nonEmpty(a.content) && nonEmpty(a.filename),
      ),
  ],
]

function invalidMail(json: unknown): Answer | undefined {
  const mail = isRecord(json) ? json : {}
  const failed = MAIL_CHECKS.find(([, , ok]) => !ok(mail))
  return failed && sendGridError(400, failed[1], failed[0])
}

function hasRecipient(person: Mail): boolean {
  return listOf(person.to, (to) => nonEmpty(to.email))
}

/** A non-empty array of objects that all pass `check`. */
function listOf(value: unknown, check: (item: Mail) => boolean): boolean {
  if (!Array.isArray(value) || value.length === 0) return false
  return value.every((item) => isRecord(item) && check(item))
}

function nonEmpty(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== ''
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
