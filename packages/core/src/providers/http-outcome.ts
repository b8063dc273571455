import type { ProviderOutcome } from './provider.js'

// How the HTTP adapters turn an answer, or the lack of one, into a provider
// outcome (DESIGN section 6): 429 is rate limited; 408, 5xx and connection
// failures are transient; any other non-success answer is permanent.

/** The most bytes of a provider's answer that are read. */
export const MAX_ANSWER_BYTES = 1024 * 1024

/** How much of a provider's own error text goes into an outcome. */
const MAX_DETAIL_CHARS = 300

/** A failed call's outcome: any outcome except success. */
export type FailureOutcome = Exclude<ProviderOutcome, { kind: 'sent' }>

/**
 * The milliseconds a `Retry-After` header asks to wait, from `now`: the
 * header is either whole seconds or an HTTP date. An absent or invalid
 * header gives `undefined`; a date in the past gives 0.
 */
export function parseRetryAfter(
  header: string | null,
  now: number = Date.now(),
): number | undefined {
  if (header === null) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const at = parseHttpDate(value)
  return at === undefined ? undefined : Math.max(0, at - now)
}

const MONTHS = 'JanFebMarAprMayJunJulAugSepOctNovDec'

// The three forms RFC 9110 section 5.6.7 makes recipients accept, all UTC:
// IMF-fixdate, the obsolete RFC 850 form and asctime. `Date.parse` is not
// used: it accepts much else, and reads asctime as local time.
const IMF_FIXDATE =
  /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const RFC_850 =
  /^[A-Z][a-z]+, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
const ASCTIME =
  /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/** Day, month name, year, hours, minutes, seconds. */
type DateParts = readonly [string, string, string, string, string, string]

/** An HTTP date as epoch milliseconds, or `undefined` when it is not one. */
export function parseHttpDate(text: string): number | undefined {
  const parts = imfParts(text) ?? rfc850Parts(text) ?? asctimeParts(text)
  return parts === undefined ? undefined : utcFromParts(parts)
}

function imfParts(text: string): DateParts | undefined {
  const match = IMF_FIXDATE.exec(text)
  if (match === null) return undefined
  const [day, month, year, hh, mm, ss] = match.slice(1)
  return [day, month, year, hh, mm, ss]
}

function rfc850Parts(text: string): DateParts | undefined {
  const match = RFC_850.exec(text)
  if (match === null) return undefined
  const [day, month, yy, hh, mm, ss] = match.slice(1)
  return [day, month, String(fullYear(Number(yy))), hh, mm, ss]
}

function asctimeParts(text: string): DateParts | undefined {
  const match = ASCTIME.exec(text)
  if (match === null) return undefined
  const [month, day, hh, mm, ss, year] = match.slice(1)
  return [day.trim(), month, year, hh, mm, ss]
}

// RFC 850's two-digit years: RFC 9110 reads one that looks more than 50
// years in the future as the most recent past year with those digits.
function fullYear(yy: number): number {
  const thisYear = new Date().getUTCFullYear()
  const year = Math.floor(thisYear / 100) * 100 + yy
  return year > thisYear + 50 ? year - 100 : year
}

function utcFromParts(parts: DateParts): number | undefined {
  const [dayText, monthName, ...numbers] = parts
  const [year, hours, minutes, seconds] = numbers.map(Number)
  const day = Number(dayText)
  const month = MONTHS.indexOf(monthName) / 3
  if (!Number.isInteger(month) || hours > 23 || minutes > 59) return undefined
  if (seconds > 60) return undefined
  const at = Date.UTC(year, month, day, hours, minutes, seconds)
  // Reject days such as 31 Feb, which Date.UTC would roll into March.
  return new Date(at).getUTCDate() === day ? at : undefined
}

/**
 * The outcome of a non-success answer. `detail` describes it (the status
 * and what the provider said); `retryAfter` is the `Retry-After` header.
 */
export function failedAnswerOutcome(
  status: number,
  detail: string,
  retryAfter: string | null,
): FailureOutcome {
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(retryAfter)
    return retryAfterMs === undefined
      ? { kind: 'rate_limited', error: detail }
      : { kind: 'rate_limited', retryAfterMs, error: detail }
  }
  if (status === 408 || status >= 500)
    return { kind: 'transient', error: detail }
  return { kind: 'permanent', error: detail }
}

/**
 * The outcome of a call that threw instead of answering: `aborted` when the
 * caller's signal fired (the dispatcher's time limit), otherwise a network
 * failure. Both are transient.
 */
export function thrownOutcome(
  error: unknown,
  signal: AbortSignal,
): FailureOutcome {
  if (signal.aborted) return { kind: 'transient', error: 'aborted' }
  return { kind: 'transient', error: `network error: ${networkReason(error)}` }
}

/**
 * Why a fetch failed, as briefly as possible: the system error code (such
 * as `ECONNREFUSED`) when the runtime gives one, else the message.
 */
export function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause
  if (typeof cause?.code === 'string') return cause.code
  const message = error instanceof Error ? error.message : String(error)
  return printable(message)
}

/**
 * Reads an answer's body as UTF-8 text, at most {@link MAX_ANSWER_BYTES}
 * of it: a provider that answers without end cannot exhaust memory.
 */
export async function readAnswerText(response: Response): Promise<string> {
  const reader = response.body?.getReader()
  if (reader === undefined) return ''
  const decoder = new TextDecoder()
  let text = ''
  let bytes = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    bytes += value.byteLength
    text += decoder.decode(value, { stream: true })
    if (bytes >= MAX_ANSWER_BYTES) {
      await reader.cancel()
      break
    }
  }
  return text + decoder.decode()
}

/** Parses JSON, or gives `undefined` when the text is not JSON. */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/**
 * Text from a provider, safe to store as an error: control characters
 * become spaces, runs of space collapse, and it is cut to a few hundred
 * characters.
 */
export function printable(text: string, maxChars = MAX_DETAIL_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\s]+/g, ' ').trim()
  return flat.length <= maxChars ? flat : `${flat.slice(0, maxChars - 1)}…`
}

/** `text` with every occurrence of `secret` replaced by `[redacted]`. */
export function withoutSecret(text: string, secret: string): string {
  return text.split(secret).join('[redacted]')
}

/** Releases an answer's body that will not be read. */
export function discardBody(response: Response): void {
  response.body?.cancel().catch(() => undefined)
}

/**
 * The ky options of every adapter call: exactly one HTTP request, since the
 * dispatcher owns retries and time limits (it aborts the signal); answers
 * of any status are returned, not thrown; redirects are not followed, so
 * that credentials go nowhere but the configured base URL.
 */
export const ONE_ATTEMPT = {
  retry: 0,
  timeout: false,
  throwHttpErrors: false,
  redirect: 'manual',
} as const

/**
 * The headers that tell a provider (the standalone mock provider server)
 * which message and attempt a call is, so it can apply a seeded schedule.
 */
export function parleyHeaders(
  messageId: string,
  attempt: number,
): Record<string, string> {
  return {
    'x-parley-message-id': messageId,
    'x-parley-attempt': String(attempt),
  }
}

/**
 * Describes a non-success answer for an outcome's error: the provider, the
 * status and, when given, what the provider said about it.
 */
export function answerDetail(
  provider: string,
  status: number,
  said: string,
): string {
  const redirect =
    status >= 300 && status < 400
      ? ' (redirects are not followed: check the base URL)'
      : ''
  const detail = said === '' ? '' : `: ${said}`
  return `${provider} answered HTTP ${status}${redirect}${detail}`
}
