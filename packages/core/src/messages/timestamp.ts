const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)$/

/**
 * Reads an ISO-8601 date-time that names a real instant with a zone (`Z` or
 * an offset) and returns it in UTC with milliseconds, or `null` when the
 * text is not one (no zone, February 30, hour 24, and so on).
 */
export function parseInstant(text: string): string | null {
  const read = readInstant(text)
  return typeof read === 'string' ? read : null
}

/**
 * As {@link parseInstant}, saying what is wrong instead of `null`: `form`
 * (not such a date-time) or `years` (a real instant, outside UTC years
 * 0001 to 9999).
 */
export function readInstant(text: string): string | 'form' | 'years' {
  const match = ISO_INSTANT.exec(text)
  if (!match) return 'form'
  const [, y, mo, d, h, mi, s, frac, zone] = match as unknown as string[]
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = s === undefined ? 0 : Number(s)
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) {
    return 'form'
  }
  if (hour > 23 || minute > 59 || second > 59) return 'form'

  const offset = offsetMinutes(zone ?? 'Z')
  if (offset === null) return 'form'
  const millis =
    frac === undefined ? 0 : Number(frac.padEnd(3, '0').slice(0, 3))
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 onto 19xx.
  const local = new Date(0)
  local.setUTCFullYear(year, month - 1, day)
  local.setUTCHours(hour, minute, second, millis)
  const utc = new Date(local.getTime() - offset * 60_000)
  // Years 0001-9999 only, in UTC. Beyond 9999 toISOString stops being
  // fixed width (+010000-…) and no longer sorts on SQLite; year 0000 (1 BC)
  // is one Postgres refuses to read in this form. An offset can carry an
  // instant across either edge, so the UTC year is what is checked.
  const utcYear = utc.getUTCFullYear()
  if (utcYear < 1 || utcYear > 9999) return 'years'
  return formatInstant(utc)
}

/** Formats a Date as UTC ISO-8601 with milliseconds (fixed width). */
export function formatInstant(date: Date): string {
  return date.toISOString()
}

function offsetMinutes(zone: string): number | null {
  if (zone === 'Z' || zone === 'z') return 0
  const sign = zone.startsWith('-') ? -1 : 1
  const digits = zone.slice(1).replace(':', '')
  const hours = Number(digits.slice(0, 2))
  const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
  if (hours > 23 || minutes > 59) return null
  return sign * (hours * 60 + minutes)
}

function daysIn(year: number, month: number): number {
  if (month === 2) return isLeap(year) ? 29 : 28
  return new Date(Date.UTC(2001, month, 0)).getUTCDate()
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
}
