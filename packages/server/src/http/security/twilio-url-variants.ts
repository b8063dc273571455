import { parse, stringify } from 'node:querystring'

/**
 * The spellings of a URL that Twilio's helper libraries accept a signature
 * over: the URL as received and as normalized by WHATWG URL parsing (which
 * escapes characters such as `'` in the query), the latter also with its
 * query re-encoded by Node's legacy `querystring`, each with and without
 * the port (the scheme's default port is added when none is given). Twilio
 * signs the URL as configured, and a client or proxy on the way may spell
 * the port or the escapes differently.
 */
export function urlVariants(url: string): Set<string> {
  const variants = new Set([withoutPort(url), withDefaultPort(url)])
  const normalized = normalizeUrl(url)
  if (normalized === undefined) return variants
  for (const variant of [
    withoutPort(normalized),
    withDefaultPort(normalized),
  ]) {
    variants.add(variant)
    variants.add(withLegacyQuery(variant))
  }
  return variants
}

interface UrlParts {
  readonly prefix: string
  readonly port: string
  readonly rest: string
}

// scheme://, user info, host (an IPv6 literal keeps its colons), port,
// then the path and query exactly as written.
const URL_PARTS =
  /^([a-z][a-z0-9+.-]*:\/\/(?:[^/?#@]*@)?(?:\[[^\]/?#]*\]|[^/?#:]*))(:[0-9]*)?(.*)$/is

function splitUrl(url: string): UrlParts | undefined {
  const match = URL_PARTS.exec(url)
  if (match === null) return undefined
  return { prefix: match[1] ?? '', port: match[2] ?? '', rest: match[3] ?? '' }
}

function withoutPort(url: string): string {
  const parts = splitUrl(url)
  return parts === undefined ? url : parts.prefix + parts.rest
}

function withDefaultPort(url: string): string {
  const parts = splitUrl(url)
  if (parts === undefined || parts.port !== '') return url
  const port = parts.prefix.toLowerCase().startsWith('https:') ? ':443' : ':80'
  return parts.prefix + port + parts.rest
}

function normalizeUrl(url: string): string | undefined {
  try {
    return new URL(url).href
  } catch {
    return undefined
  }
}

// Node's legacy `querystring` decodes the query and escapes less than WHATWG
// URL does (`'` stays `'` where WHATWG writes `%27`); Twilio's helper
// library accepts a signature over that spelling too.
function withLegacyQuery(url: string): string {
  const start = url.indexOf('?')
  if (start === -1 || start === url.length - 1) return url
  return `${url.slice(0, start)}?${stringify(parse(url.slice(start + 1)))}`
}
