import {
  type CountryCode,
  isSupportedCountry,
  parsePhoneNumberWithError,
} from 'libphonenumber-js'

/** The result of reading one phone-like address. */
export type PhoneParse =
  | { readonly ok: true; readonly participant: string }
  | { readonly ok: false; readonly reason: string }

// Only formatting characters may surround the digits: anything else
// (letters, `#`, `;ext=`, `x`) would let the parser reshape the number.
const PHONE_CHARS = /^\+?[0-9 ().-]+$/
const SHORT_CODE = /^[0-9]{3,6}$/
// An alphanumeric sender ID: 1 to 11 letters, digits or spaces, at least
// one letter (carriers reject anything else).
const SENDER_ID = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/

/** True when `region` is a two-letter region libphonenumber knows. */
export function isKnownRegion(region: string): boolean {
  return isSupportedCountry(region)
}

/**
 * Reads a phone number, short code, or (where allowed) alphanumeric sender
 * ID into its participant form: E.164 for numbers, digits for short codes,
 * the ID as given for sender IDs.
 */
export function parsePhone(
  text: string,
  region: string,
  allowSenderId: boolean,
): PhoneParse {
  const trimmed = text.trim()
  if (trimmed === '') return { ok: false, reason: 'must not be empty' }
  // No real number, formatted, comes near this; it bounds the work below.
  if (trimmed.length > 64) {
    return { ok: false, reason: 'is not a phone number or short code' }
  }
  if (!PHONE_CHARS.test(trimmed)) {
    if (allowSenderId && SENDER_ID.test(trimmed)) {
      return { ok: true, participant: trimmed }
    }
    return { ok: false, reason: 'is not a phone number or short code' }
  }

  // Only bare digits are a short code: `804-555` is a cut-off number, not
  // short code 804555.
  if (SHORT_CODE.test(trimmed)) return { ok: true, participant: trimmed }

  return parseFullNumber(trimmed, region)
}

// Parsing a full number is the most expensive step of validating a message
// (for +1 numbers libphonenumber tries the patterns of every NANP region to
// find the number's own). Senders and recipients repeat from message to
// message, and an answer depends only on the text and the region, so
// answers are kept in two generations: the newest up to PARSED_CACHE_SIZE,
// then the generation before, whose answers move up when used again. A
// generation is dropped whole, so nothing is ever deleted one by one (Map
// deletes leave holes that cost a rehash).
const PARSED_CACHE_SIZE = 5_000
let newer = new Map<string, PhoneParse>()
let older = new Map<string, PhoneParse>()

function parseFullNumber(text: string, region: string): PhoneParse {
  const key = `${region}:${text}`
  const kept = newer.get(key)
  if (kept !== undefined) return kept
  const result = older.get(key) ?? parseUncached(text, region)
  if (newer.size >= PARSED_CACHE_SIZE) {
    older = newer
    newer = new Map()
  }
  newer.set(key, result)
  return result
}

function parseUncached(text: string, region: string): PhoneParse {
  try {
    const number = parsePhoneNumberWithError(text, {
      defaultCountry: region as CountryCode,
      extract: false,
    })
    if (!number.isPossible()) {
      return { ok: false, reason: 'has the wrong length for its country' }
    }
    return { ok: true, participant: number.number }
  } catch {
    return { ok: false, reason: 'is not a phone number or short code' }
  }
}
