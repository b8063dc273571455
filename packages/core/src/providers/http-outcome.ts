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
const HTTP_DATE_FORMS = [
  /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/,
  /^[A-Z][a-z]+, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/,
  /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/,
] as const

/** An HTTP date as epoch milliseconds, or `undefined` when it is not one. */
export function parseHttpDate(text: string): number | undefined {
  const [imf, rfc850, asctime] = HTTP_DATE_FORMS
  let parts: (string | undefined)[] | undefined
  let match = imf.exec(text)
  if (match !== null) parts = match.slice(1)
  match ??= rfc850.exec(text)
  if (parts === undefined && match !== null) {
    const [, day, month, yy, ...time] = match
    parts = [day, month, String(fullYear(Number(yy))), ...time]
  }
  match ??= asctime.exec(text)
  if (parts === undefined && match !== null) {
    const [, month, day, hh, mm, ss, year] = match
    parts = [day, month, year, hh, mm, ss]
  }
  return parts === undefined ? undefined : utcFromParts(parts)
}

// RFC 850's two-digit years: RFC 9110 reads one that looks more than 50
// years in the future as the most recent past year with those digits.
function fullYear(yy: number): number {
  const thisYear = new Date().getUTCFullYear()
  const year = Math.floor(thisYear / 100) * 100 + yy
  return year > thisYear + 50 ? year - 100 : year
}

function utcFromParts(parts: (string | undefined)[]): number | undefined {
  const [day, monthName = '', year, hours, minutes, seconds] = parts
  const month = MONTHS.indexOf(monthName) / 3
  if (!Number.isInteger(month)) return undefined
  const at = Date.UTC(
    Number(year),
    month,
    Number(day),
    Number(hours),
    Number(minutes),
    Number(seconds),
  )
  const date = new Date(at)
  // Reject dates such as 31 Feb that Date.UTC would roll over.
  return date.getUTCDate() === Number(day) ? at : undefined
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
  if (status === 408 || status >= 500) return { kind: 'transient', error: detail }
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
