// Validation of the HTTP adapters' options. Each check throws a TypeError
// (wrong type) or RangeError (right type, bad value) that names the adapter
// option and shows the value received, except for secrets, whose value is
// never echoed.
import { fetchBlockedPort } from './fetch-ports.js'

/** The `fetch` function adapters call; the global one by default. */
export type FetchFunction = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Response>

/** A non-empty string; `secret` keeps the value out of the message. */
export function requireText(
  option: string,
  value: unknown,
  secret = false,
): string {
  if (typeof value !== 'string') {
    throw new TypeError(
      `${option} must be a non-empty string (received ${typeOf(value)})`,
    )
  }
  if (value.trim() === '') {
    const received = secret ? 'a blank string' : JSON.stringify(value)
    throw new RangeError(
      `${option} must be a non-empty string (received ${received})`,
    )
  }
  return value
}

/** Like {@link requireText}, or `fallback` when the value is undefined. */
export function optionalText(
  option: string,
  value: unknown,
  fallback: string,
): string {
  return value === undefined ? fallback : requireText(option, value)
}

/** An absolute http(s) URL. */
export function requireHttpUrl(option: string, value: unknown): URL {
  const text = requireText(option, value)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new RangeError(`${option} must be an absolute URL (received ${text})`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RangeError(`${option} must be an http(s) URL (received ${text})`)
  }
  return url
}

/**
 * An absolute http(s) URL without query, fragment or credentials, or
 * `fallback`; returned without trailing slashes, so that API paths can be
 * appended to it.
 */
export function requireBaseUrl(
  option: string,
  value: unknown,
  fallback: string,
): string {
  const url = requireHttpUrl(option, value ?? fallback)
  if (
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new RangeError(
      `${option} must not carry a query, fragment or credentials ` +
        `(received ${url.origin}${url.pathname}…)`,
    )
  }
  if (url.port === '0') {
    throw new RangeError(
      `${option} uses port 0, which no connection can reach ` +
        `(received ${url.origin}${url.pathname})`,
    )
  }
  const blocked = fetchBlockedPort(url)
  if (blocked !== undefined) {
    throw new RangeError(
      `${option} uses port ${blocked}, which fetch refuses to call, as ` +
        `browsers do (received ${url.origin}${url.pathname})`,
    )
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '')
}

/**
 * A whole number from 1 up to `Number.MAX_SAFE_INTEGER`; `fallback` when
 * the value is undefined and there is one.
 */
export function positiveInteger(
  option: string,
  value: unknown,
  fallback?: number,
): number {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'number') {
    throw new TypeError(
      `${option} must be a number (received ${typeOf(value)})`,
    )
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `${option} must be a whole number of at least 1 (received ${value})`,
    )
  }
  return value
}

/** A boolean, or `fallback`. */
export function optionalBoolean(
  option: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') {
    throw new TypeError(
      `${option} must be a boolean (received ${typeOf(value)})`,
    )
  }
  return value
}

/** A fetch function, or the global `fetch`. */
export function optionalFetch(option: string, value: unknown): FetchFunction {
  if (value === undefined) return (input, init) => globalThis.fetch(input, init)
  if (typeof value !== 'function') {
    throw new TypeError(
      `${option} must be a function (received ${typeOf(value)})`,
    )
  }
  return value as FetchFunction
}

function typeOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}
