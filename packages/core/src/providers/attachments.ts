import { lookup } from 'node:dns/promises'
import {
  type FetchFunction,
  optionalBoolean,
  optionalFetch,
  positiveInteger,
} from './adapter-options.js'
import { fetchBlockedPort } from './fetch-ports.js'
import { discardBody, networkReason, printable } from './http-outcome.js'
import {
  isPrivateHostName,
  nonPublicReason,
  parseIp,
} from './private-address.js'
import type { ProviderOutcome } from './provider.js'

/** Resolves a host name to all its addresses, as `dns.lookup` does. */
export type HostLookup = (
  hostname: string,
) => Promise<readonly { readonly address: string }[]>

/** Options of {@link fetchAttachment}. */
export interface AttachmentFetchOptions {
  /** The most bytes the body may have; a larger one is refused. */
  readonly maxBytes: number
  /** Time for the whole fetch, redirects and DNS included, in ms. */
  readonly timeoutMs: number
  /**
   * Whether hosts on loopback, private, link-local and other non-public
   * addresses may be fetched. Leave it off unless every URL is trusted.
   */
  readonly allowPrivate: boolean
  /** Aborts the fetch, e.g. when the provider call runs out of time. */
  readonly signal?: AbortSignal
  /** The fetch to use. @default globalThis.fetch */
  readonly fetch?: FetchFunction
  /** The resolver to use. @default dns.lookup with `all: true` */
  readonly lookup?: HostLookup
}

/** An attachment's content, read in full. */
export interface FetchedAttachment {
  readonly kind: 'fetched'
  readonly content: Uint8Array
  /** The `Content-Type` header as the host sent it, if it did. */
  readonly contentType: string | null
  /** The URL the content came from, after redirects. */
  readonly url: URL
}

/** Why an attachment could not be fetched, as a provider outcome. */
export type AttachmentFailure = Extract<
  ProviderOutcome,
  { kind: 'transient' | 'permanent' }
>

/** What {@link fetchAttachment} gives: the content, or why not. */
export type AttachmentResult = FetchedAttachment | AttachmentFailure

/** The most redirects an attachment fetch follows. */
export const MAX_ATTACHMENT_REDIRECTS = 3

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/**
 * Fetches an attachment for a provider that takes attachments as content
 * (DESIGN section 6): http(s) only; every host, including each redirect's,
 * must resolve to public addresses only, unless `allowPrivate`; at most
 * {@link MAX_ATTACHMENT_REDIRECTS} redirects; the body is streamed and
 * refused once it passes `maxBytes`; the whole fetch must end within
 * `timeoutMs`. Never throws: a failure is `permanent` when retrying cannot
 * help (refused host, too large, 404) and `transient` otherwise.
 */
export async function fetchAttachment(
  url: string,
  options: AttachmentFetchOptions,
): Promise<AttachmentResult> {
  const settings = checkedSettings(options)
  const deadline = startDeadline(settings.timeoutMs, options.signal)
  try {
    return await followRedirects(url, settings, deadline.signal)
  } catch (error) {
    return failureOf(error, url, settings, deadline)
  } finally {
    deadline.clear()
  }
}

interface Settings {
  readonly maxBytes: number
  readonly timeoutMs: number
  readonly allowPrivate: boolean
  readonly signal: AbortSignal | undefined
  readonly fetch: FetchFunction
  readonly lookup: HostLookup
}

function checkedSettings(options: AttachmentFetchOptions): Settings {
  return {
    maxBytes: positiveInteger('maxBytes', options.maxBytes),
    timeoutMs: positiveInteger('timeoutMs', options.timeoutMs),
    allowPrivate: optionalBoolean('allowPrivate', options.allowPrivate, false),
    signal: options.signal,
    fetch: optionalFetch('fetch', options.fetch),
    lookup: options.lookup ?? lookupAll,
  }
}

function lookupAll(hostname: string) {
  return lookup(hostname, { all: true, verbatim: true })
}

/** An address as `dns.lookup` gives it. */
export interface LookupAddress {
  /** The IP address, as text (`203.0.113.7`, `2001:db8::1`). */
  readonly address: string
  /** 4 or 6. */
  readonly family: number
}

/**
 * The `lookup` option of Node's `net.connect` and `tls.connect` (and of
 * undici's `connect` options): resolves `hostname`, then calls back with
 * the addresses or an error.
 */
export type ConnectLookup = (
  hostname: string,
  options: { readonly all?: boolean },
  callback: (
    error: Error | null,
    address: string | LookupAddress[],
    family?: number,
  ) => void,
) => void

/**
 * A connect-time `lookup` that refuses every host with a non-public
 * address, for the connections that fetch attachments: the SendGrid
 * adapter's attachment check resolves the host before the fetch, but the
 * fetch resolves it again to connect, and a name whose answers change in
 * between (DNS rebinding) would get past the first check. A connection
 * made through this lookup goes only to addresses it checked. Hand it to
 * a fetch whose connections take a lookup (on Node, an undici `Agent`
 * with `connect: { lookup }`) and pass that fetch as the SendGrid
 * adapter's `attachmentFetch`; `parley serve` does.
 *
 * The refusal it raises is a permanent attachment failure. IP literals
 * never reach a lookup; the adapter's own check refuses those.
 */
export function publicAddressLookup(
  resolve: (hostname: string) => Promise<readonly LookupAddress[]> = lookupAll,
): ConnectLookup {
  return (hostname, options, callback) => {
    const host = bareHost(hostname)
    const answer = (async () => {
      requirePublicName(host)
      const addresses = await resolve(host)
      requirePublic(host, addresses, ' when connecting')
      return addresses
    })()
    answer.then(
      (addresses) => {
        if (options.all === true) callback(null, [...addresses])
        else callback(null, addresses[0]!.address, addresses[0]!.family)
      },
      (error: Error) => callback(error, options.all === true ? [] : ''),
    )
  }
}

async function followRedirects(
  text: string,
  settings: Settings,
  signal: AbortSignal,
): Promise<FetchedAttachment> {
  let url = httpUrl(text)
  for (let hop = 0; ; hop += 1) {
    await checkHost(url, settings, signal)
    const response = await get(url, settings.fetch, signal)
    const next = redirectTarget(response, url)
    if (next === undefined) {
      return readAttachment(response, url, settings.maxBytes)
    }
    discardBody(response)
    if (hop === MAX_ATTACHMENT_REDIRECTS) {
      throw refused(`more than ${MAX_ATTACHMENT_REDIRECTS} redirects`)
    }
    url = next
  }
}

function httpUrl(text: string, base?: URL): URL {
  let url: URL
  try {
    url = new URL(text, base)
  } catch {
    throw refused('not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw refused(`${url.protocol} URLs are not fetched, only http(s)`)
  }
  if (url.port === '0') throw refused('port 0 cannot be connected to')
  const blocked = fetchBlockedPort(url)
  if (blocked !== undefined) {
    throw refused(`port ${blocked} is one that fetch refuses to call`)
  }
  return url
}

async function checkHost(
  url: URL,
  settings: Settings,
  signal: AbortSignal,
): Promise<void> {
  if (settings.allowPrivate) return
  const host = bareHost(url.hostname)
  requirePublicName(host)
  requirePublic(host, await resolve(host, settings.lookup, signal), '')
}

const ALLOW_HINT = ' (API_ATTACHMENT_ALLOW_PRIVATE allows it)'

// A URL's or a lookup's host, without the brackets of an IPv6 literal.
function bareHost(hostname: string): string {
  return hostname.replace(/^\[(.*)\]$/, '$1')
}

function requirePublicName(host: string): void {
  if (isPrivateHostName(host)) {
    throw refused(`${host} is a private host name${ALLOW_HINT}`)
  }
}

// Refuses a host without addresses or with any that is not public; `when`
// says which of the two looks found it (before the fetch, or connecting).
function requirePublic(
  host: string,
  addresses: readonly { readonly address: string }[],
  when: string,
): void {
  if (addresses.length === 0) throw refused(`${host} has no address`)
  for (const { address } of addresses) {
    const reason = nonPublicReason(address)
    if (reason === undefined) continue
    throw refused(
      `${host} has the ${reason} address ${address}${when}, not fetched${ALLOW_HINT}`,
    )
  }
}

// Literals are checked as they are, without asking any resolver.
async function resolve(
  host: string,
  resolver: HostLookup,
  signal: AbortSignal,
): Promise<readonly { readonly address: string }[]> {
  if (parseIp(host) !== undefined) return [{ address: host }]
  let addresses: readonly { readonly address: string }[]
  try {
    addresses = await untilAborted(resolver(host), signal)
  } catch (error) {
    if (signal.aborted) throw error
    throw lookupFailure(host, error)
  }
  return addresses
}

function lookupFailure(host: string, error: unknown): AttachmentRefusal {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'ENOTFOUND' || code === 'ENODATA') {
    return refused(`${host} does not resolve (${code})`)
  }
  const reason = typeof code === 'string' ? code : networkReason(error)
  return new AttachmentRefusal(
    'transient',
    `DNS lookup of ${host} failed (${reason})`,
  )
}

function get(
  url: URL,
  fetch: FetchFunction,
  signal: AbortSignal,
): Promise<Response> {
  // The host was resolved and checked above, but fetch resolves it again
  // to connect: a name whose answers change in between (DNS rebinding)
  // gets past that check unless the fetch's own connections resolve
  // through publicAddressLookup, as the fetch `parley serve` hands the
  // SendGrid adapter does. The web-standard fetch cannot be told so here.
  return fetch(url.href, {
    method: 'GET',
    redirect: 'manual',
    signal,
    headers: { accept: '*/*' },
  })
}

function redirectTarget(response: Response, from: URL): URL | undefined {
  if (!REDIRECT_STATUSES.has(response.status)) return undefined
  const location = response.headers.get('location')
  if (location === null) return undefined
  return httpUrl(location, from)
}

async function readAttachment(
  response: Response,
  url: URL,
  maxBytes: number,
): Promise<FetchedAttachment> {
  if (!response.ok) {
    discardBody(response)
    throw statusFailure(response.status)
  }
  const declared = Number(response.headers.get('content-length'))
  if (declared > maxBytes) {
    discardBody(response)
    throw tooLarge(maxBytes)
  }
  const content = await readCapped(response, maxBytes)
  const contentType = response.headers.get('content-type')
  return { kind: 'fetched', content, contentType, url }
}

function statusFailure(status: number): AttachmentRefusal {
  const transient =
    status === 408 || status === 425 || status === 429 || status >= 500
  return new AttachmentRefusal(
    transient ? 'transient' : 'permanent',
    `the host answered HTTP ${status}`,
  )
}

async function readCapped(
  response: Response,
  maxBytes: number,
): Promise<Uint8Array> {
  const reader = response.body?.getReader()
  if (reader === undefined) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw tooLarge(maxBytes)
    }
    chunks.push(value)
  }
  return concat(chunks, size)
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const content = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    content.set(chunk, offset)
    offset += chunk.byteLength
  }
  return content
}

function tooLarge(maxBytes: number): AttachmentRefusal {
  return refused(`larger than the ${maxBytes}-byte limit`)
}

/** A failure found on the way, carried up to {@link fetchAttachment}. */
class AttachmentRefusal extends Error {
  override name = 'AttachmentRefusal'

  constructor(
    readonly kind: AttachmentFailure['kind'],
    message: string,
  ) {
    super(message)
  }
}

function refused(message: string): AttachmentRefusal {
  return new AttachmentRefusal('permanent', message)
}

// A refusal thrown here, or raised by publicAddressLookup inside the fetch
// (which wraps it as the cause of its own error, maybe more than once).
function refusalIn(error: unknown): AttachmentRefusal | undefined {
  let current = error
  for (let depth = 0; depth < 4 && current !== undefined; depth += 1) {
    if (current instanceof AttachmentRefusal) return current
    current = (current as { cause?: unknown } | null)?.cause
  }
  return undefined
}

function failureOf(
  error: unknown,
  text: string,
  settings: Settings,
  deadline: Deadline,
): AttachmentFailure {
  if (settings.signal?.aborted === true) {
    return { kind: 'transient', error: 'aborted' }
  }
  const about = `attachment ${describeUrl(text)}`
  const refusal = refusalIn(error)
  if (refusal !== undefined) {
    return { kind: refusal.kind, error: `${about}: ${refusal.message}` }
  }
  if (deadline.timedOut()) {
    const limit = settings.timeoutMs
    return { kind: 'transient', error: `${about}: not fetched in ${limit} ms` }
  }
  return {
    kind: 'transient',
    error: `${about}: network error (${networkReason(error)})`,
  }
}

// Origin and path only: a query string may hold a signature or token.
function describeUrl(text: string): string {
  try {
    const url = new URL(text)
    return printable(`${url.origin}${url.pathname}`, 120)
  } catch {
    return printable(text, 120)
  }
}

interface Deadline {
  readonly signal: AbortSignal
  timedOut(): boolean
  clear(): void
}

// One signal that fires when the caller aborts or the time is up.
function startDeadline(timeoutMs: number, outer?: AbortSignal): Deadline {
  const controller = new AbortController()
  let expired = false
  const timer = setTimeout(() => {
    expired = true
    controller.abort(new Error(`not fetched in ${timeoutMs} ms`))
  }, timeoutMs)
  const onAbort = () => controller.abort(outer?.reason)
  if (outer?.aborted === true) onAbort()
  outer?.addEventListener('abort', onAbort, { once: true })
  return {
    signal: controller.signal,
    timedOut: () => expired,
    clear: () => {
      clearTimeout(timer)
      outer?.removeEventListener('abort', onAbort)
    },
  }
}

// The resolver cannot be cancelled; this stops waiting for it.
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => {
      signal.removeEventListener('abort', onAbort)
    })
  })
}
