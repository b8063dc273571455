import { Buffer } from 'node:buffer'
import ky from 'ky'
import {
  type FetchFunction,
  optionalFetch,
  optionalText,
  requireBaseUrl,
  requireHttpUrl,
  requireText,
} from './adapter-options.js'
import {
  answerDetail,
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

/** Options of {@link createTwilioProvider}. */
export interface TwilioProviderOptions {
  /** The provider's name, unique among providers. @default 'twilio' */
  readonly name?: string
  /**
   * Where the Twilio REST API is: Twilio's own URL, or a compatible server
   * such as `parley mock-provider`. An http(s) URL, optionally with a path
   * prefix, without query, fragment or credentials, and not on a port that
   * fetch refuses to call (such as 6000). @default 'https://api.twilio.com'
   */
  readonly baseUrl?: string
  /** The account SID: part of the path, and the basic-auth user. */
  readonly accountSid: string
  /** The auth token: the basic-auth password. Never put into errors. */
  readonly authToken: string
  /**
   * Sent as `StatusCallback`, so that Twilio posts delivery updates there,
   * such as `https://parley.example.com/api/webhooks/sms/status`.
   * @default none (Twilio posts no status callbacks)
   */
  readonly statusCallbackUrl?: string
  /** The fetch ky calls, for tests. @default globalThis.fetch */
  readonly fetch?: FetchFunction
}

/** Twilio's API URL. */
export const TWILIO_BASE_URL = 'https://api.twilio.com'

interface TwilioSettings {
  readonly name: string
  readonly endpoint: string
  readonly authorization: string
  readonly authToken: string
  readonly statusCallbackUrl: string | undefined
  readonly fetch: FetchFunction
}

/**
 * A provider for the `sms` family that speaks Twilio's Messages API: one
 * form-encoded `POST {baseUrl}/2010-04-01/Accounts/{sid}/Messages.json`
 * per attempt, with `To`, `From`, `Body` and one `MediaUrl` per attachment,
 * and basic auth. 2xx with a `sid` is sent; 429 is rate limited (with
 * `Retry-After`); 408, 5xx and network failures are transient; other
 * answers are permanent.
 *
 * @throws TypeError or RangeError naming the option that is wrong.
 *
 * @example
 * const twilio = createTwilioProvider({
 *   accountSid: 'AC0123456789abcdef0123456789abcdef',
 *   authToken: process.env.TWILIO_AUTH_TOKEN ?? '',
 * })
 */
export function createTwilioProvider(options: TwilioProviderOptions): Provider {
  checkKnownOptions('createTwilioProvider', options, [
    'name',
    'baseUrl',
    'accountSid',
    'authToken',
    'statusCallbackUrl',
    'fetch',
  ])
  const settings = twilioSettings(options)
  return {
    name: settings.name,
    family: 'sms',
    send: (message, context) => sendSms(settings, message, context),
  }
}

function twilioSettings(options: TwilioProviderOptions): TwilioSettings {
  const baseUrl = requireBaseUrl('baseUrl', options.baseUrl, TWILIO_BASE_URL)
  const sid = requireText('accountSid', options.accountSid)
  if (sid.includes(':')) {
    throw new RangeError(`accountSid must not contain ':' (received ${sid})`)
  }
  const authToken = requireText('authToken', options.authToken, true)
  return {
    name: optionalText('name', options.name, 'twilio'),
    endpoint: `${baseUrl}/2010-04-01/Accounts/${encodeURIComponent(sid)}/Messages.json`,
    authorization: basicAuthorization(sid, authToken),
    authToken,
    statusCallbackUrl: optionalUrl(
      'statusCallbackUrl',
      options.statusCallbackUrl,
    ),
    fetch: optionalFetch('fetch', options.fetch),
  }
}

function optionalUrl(option: string, value: unknown): string | undefined {
  return value === undefined ? undefined : requireHttpUrl(option, value).href
}

function basicAuthorization(user: string, password: string): string {
  const token = Buffer.from(`${user}:${password}`, 'utf8').toString('base64')
  return `Basic ${token}`
}

async function sendSms(
  settings: TwilioSettings,
  message: OutboundMessage,
  { attempt, signal }: SendContext,
): Promise<ProviderOutcome> {
  try {
    const response = await ky.post(settings.endpoint, {
      ...ONE_ATTEMPT,
      body: twilioForm(message, settings.statusCallbackUrl),
      headers: {
        authorization: settings.authorization,
        accept: 'application/json',
        ...parleyHeaders(message.id, attempt),
      },
      signal,
      fetch: settings.fetch,
    })
    return await twilioOutcome(response, settings)
  } catch (error) {
    return thrownOutcome(error, signal)
  }
}

/**
 * The form Twilio takes. `URLSearchParams` encodes it as
 * `application/x-www-form-urlencoded`, so the `+` of an E.164 number is
 * sent as `%2B` and not read back as a space.
 */
function twilioForm(
  message: OutboundMessage,
  statusCallbackUrl: string | undefined,
): URLSearchParams {
  const form = new URLSearchParams()
  form.append('To', message.to)
  form.append('From', message.from)
  form.append('Body', message.body)
  for (const url of message.attachments) form.append('MediaUrl', url)
  if (statusCallbackUrl !== undefined) {
    form.append('StatusCallback', statusCallbackUrl)
  }
  return form
}

async function twilioOutcome(
  response: Response,
  settings: TwilioSettings,
): Promise<ProviderOutcome> {
  // Redact the token (and the Basic credentials carrying it) before
  // anything is cut short, or a cut could leave part of it.
  const credentials = settings.authorization.replace(/^Basic /, '')
  const text = withoutSecret(
    withoutSecret(await readAnswerText(response), settings.authToken),
    credentials,
  )
  const json = parseJsonOrUndefined(text)
  if (response.ok) return sentOrTransient(json, response.status, settings)

  const said = twilioErrorText(json, text)
  const detail = answerDetail(settings.name, response.status, said)
  return failedAnswerOutcome(
    response.status,
    withoutSecret(detail, settings.authToken),
    response.headers.get('retry-after'),
  )
}

function sentOrTransient(
  json: unknown,
  status: number,
  settings: TwilioSettings,
): ProviderOutcome {
  const sid = (json as { sid?: unknown } | undefined)?.sid
  if (typeof sid === 'string' && sid !== '') {
    return { kind: 'sent', providerMessageId: sid }
  }
  return {
    kind: 'transient',
    error: `${settings.name} answered HTTP ${status} without a message sid`,
  }
}

// Twilio's errors are JSON: { code, message, more_info, status }.
function twilioErrorText(json: unknown, text: string): string {
  const { code, message } = (json ?? {}) as {
    code?: unknown
    message?: unknown
  }
  const parts: string[] = []
  if (typeof code === 'number' || typeof code === 'string') {
    parts.push(`error ${printable(String(code), 20)}`)
  }
  if (typeof message === 'string') parts.push(printable(message))
  if (parts.length > 0) return parts.join(': ')
  return json === undefined ? printable(text, 120) : ''
}
