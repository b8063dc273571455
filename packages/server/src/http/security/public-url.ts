/** Where the public URL of a request comes from. */
export interface PublicUrlOptions {
  /**
   * `API_PUBLIC_URL`: the base URL providers call, as configured with them
   * (say `https://hooks.example.com/parley`). When set, its origin and path
   * prefix replace the scheme, host and port the server saw, which behind a
   * proxy are the proxy's, not the provider's. Validate it at start with
   * {@link parsePublicBaseUrl}.
   *
   * @default undefined (use the `Host` header)
   */
  readonly apiPublicUrl?: string | undefined
  /** The request's `Host` header. @default 'localhost' when absent */
  readonly hostHeader?: string | undefined
  /**
   * The scheme of the connection the request came on: `https` only for a
   * TLS socket.
   *
   * @default 'http'
   */
  readonly protoFromSocket?: 'http' | 'https'
}

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i

/**
 * The full URL a provider called, for signature checks: the request target
 * (`request.url`, path and query exactly as received) appended to
 * `API_PUBLIC_URL`'s origin and path prefix when that is set, else to
 * `<protoFromSocket>://<Host header>`.
 *
 * @example
 * publicUrl('/api/webhooks/sms?x=1', {
 *   apiPublicUrl: 'https://hooks.example.com/parley/',
 * })
 * // 'https://hooks.example.com/parley/api/webhooks/sms?x=1'
 */
export function publicUrl(target: string, options: PublicUrlOptions): string {
  const pathAndQuery = originForm(target)
  if (options.apiPublicUrl !== undefined) {
    return parsePublicBaseUrl(options.apiPublicUrl) + pathAndQuery
  }
  const scheme = options.protoFromSocket ?? 'http'
  return `${scheme}://${options.hostHeader ?? 'localhost'}${pathAndQuery}`
}

/**
 * Validates `API_PUBLIC_URL` and returns its base: the origin plus the path
 * without trailing slashes (`https://a.example/base/` gives
 * `https://a.example/base`). Default ports are dropped and the host is
 * lower-cased, as WHATWG URL parsing does; Twilio checks accept the URL
 * with and without the default port anyway.
 *
 * @throws RangeError when the text is not an absolute http(s) URL, or
 *   carries credentials, a query or a fragment. Messages do not quote the
 *   text, which could hold credentials.
 */
export function parsePublicBaseUrl(text: string): string {
  const url = absoluteUrl(text)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RangeError('the public URL must use http or https')
  }
  // The parsed URL drops an empty userinfo, query or fragment
  // (`https://@a.example`, `https://a.example?`), so the text is checked too.
  if (url.username !== '' || url.password !== '' || hasUserinfo(text)) {
    throw new RangeError('the public URL must not carry credentials')
  }
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(text)) {
    throw new RangeError('the public URL must not have a query or fragment')
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

// Whether the authority (from after the scheme's slashes to the first
// slash, backslash, `?` or `#`, as WHATWG parsing reads an http(s) URL)
// has an `@`; elsewhere, in the path, an `@` is an ordinary character.
function hasUserinfo(text: string): boolean {
  const rest = text.trim().replace(/^[a-z][a-z\d+.-]*:[/\\]*/i, '')
  return /^[^/\\?#]*@/.test(rest)
}

function absoluteUrl(text: string): URL {
  try {
    return new URL(text)
  } catch {
    throw new RangeError('the public URL is not an absolute URL')
  }
}

// `request.url` is normally origin-form ('/path?query'); a client may send
// absolute-form ('http://host/path?query'), of which only the path and
// query count. Nothing is decoded or re-encoded: providers sign the bytes
// they sent.
function originForm(target: string): string {
  const match = ABSOLUTE_FORM.exec(target)
  if (match === null) return target
  const rest = target.slice(match[0].length)
  return rest.startsWith('/') ? rest : `/${rest}`
}
