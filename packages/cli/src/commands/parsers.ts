import { InvalidArgumentError } from 'commander'

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

/** Parses a server base URL; only http and https are accepted. */
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
