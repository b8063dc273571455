import { InvalidArgumentError } from 'commander'

import { UsageError } from '../errors.js'

// Option and argument parsers. Each throws commander's InvalidArgumentError,
// which commander reports as a usage error (exit status 2).

/** Parses a page number: a whole number from 1. */
export function parsePositiveInteger(value: string): number {
  const number = parseWholeNumber(value)
  if (number < 1) throw new InvalidArgumentError('expected 1 or more.')
  return number
}

/** Parses a page size: a whole number, where 0 means the server's default. */
export function parsePageSize(value: string): number {
  return parseWholeNumber(value)
}

/** Parses a TCP port, 0 to 65535 (0 picks a free port). */
export function parsePort(value: string): number {
  const port = parseWholeNumber(value)
  if (port > 65_535) throw new InvalidArgumentError('expected 0 to 65535.')
  return port
}

/**
 * Parses a server base URL; only http and https are accepted, without
 * credentials. It reads --url before every command and after each one that
 * calls a server, and PARLEY_URL, so every request goes through it.
 */
export function parseServerUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError('expected a URL such as http://host:8080.')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError('expected an http:// or https:// URL.')
  }
  // fetch refuses a URL with credentials, which would otherwise surface as
  // "no server answers". A UsageError, not commander's InvalidArgumentError,
  // whose message would quote the URL and so the password.
  if (url.username !== '' || url.password !== '') {
    throw new UsageError(
      '--url (or PARLEY_URL) holds credentials (user:password@), which are ' +
        'not supported; remove them and pass the key with --api-key (or ' +
        'PARLEY_API_KEY)',
    )
  }
  return value
}

/** Parses an id as the server assigns them: decimal digits. */
export function parseId(value: string): string {
  if (!/^\d+$/.test(value)) {
    throw new InvalidArgumentError('expected an id made of decimal digits.')
  }
  return value
}

/** Collects a repeatable option's values, in the order given. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

function parseWholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new InvalidArgumentError('expected a whole number.')
  }
  return Number(value)
}

/** Parses a number above 0, decimals allowed, such as a rate per second. */
export function parsePositiveNumber(value: string): number {
  const number = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
  if (!(number > 0))
    throw new InvalidArgumentError('expected a number above 0.')
  return number
}

const isoInstant =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d{1,9})?)?([Zz]|[+-]\d{2}(?::?\d{2})?)$/

/**
 * Parses --timestamp by the server's rule (docs/api.md): an ISO-8601
 * instant with `Z` or an offset, a real date and time, in UTC years 0001
 * to 9999. The value is sent as written.
 */
export function parseTimestamp(value: string): string {
  if (!isRealInstant(value)) {
    throw new InvalidArgumentError(
      'expected an ISO-8601 instant with Z or an offset, such as ' +
        '2024-11-01T14:00:00Z.',
    )
  }
  return value
}

function isRealInstant(value: string): boolean {
  const match = isoInstant.exec(value)
  if (match === null) return false
  const [year, month, day, hour, minute, second] = match
    .slice(1, 7)
    .map((part) => Number(part ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate()
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  const lastDay = month === 2 ? (leap ? 29 : 28) : daysInMonth
  if (month < 1 || month > 12 || day < 1 || day > lastDay) return false
  if (hour > 23 || minute > 59 || second > 59) return false
  const zone = match[7] as string
  const offset = /^[Zz]$/.test(zone) ? 0 : offsetMinutes(zone)
  if (offset === null) return false
  const local = new Date(0)
  local.setUTCFullYear(year, month - 1, day)
  local.setUTCHours(hour, minute, second)
  const utcYear = new Date(local.getTime() - offset * 60_000).getUTCFullYear()
  return utcYear >= 1 && utcYear <= 9999
}

function offsetMinutes(zone: string): number | null {
  const digits = zone.slice(1).replace(':', '')
  const hours = Number(digits.slice(0, 2))
  const minutes = digits.length > 2 ? Number(digits.slice(2)) : 0
  if (hours > 23 || minutes > 59) return null
  return (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes)
}

/** Parses an idempotency key: 1 to 255 visible ASCII characters. */
export function parseIdempotencyKey(value: string): string {
  if (!/^[!-~]{1,255}$/.test(value)) {
    throw new InvalidArgumentError(
      'expected 1 to 255 visible ASCII characters (no spaces).',
    )
  }
  return value
}

/** Parses a value that must not be empty or blank. */
export function parseNonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('expected a value.')
  return value
}

/** A parser of whole numbers from `min` to `max`, bounds included. */
export function boundedInteger(
  min: number,
  max: number,
): (value: string) => number {
  return (value) => {
    const number = /^\d+$/.test(value) ? Number(value) : NaN
    if (!(number >= min && number <= max)) {
      throw new InvalidArgumentError(
        `expected a whole number from ${min} to ${max.toLocaleString('en-US')}.`,
      )
    }
    return number
  }
}
