import {
  formatIp,
  inNetwork,
  type IpBytes,
  type IpNetwork,
  isMappedIpv4,
  maskBits,
  parseIp,
  parseIpLiteral,
} from './ip-address.js'

/**
 * The proxies whose `X-Forwarded-For` is believed, from
 * {@link parseTrustedProxies}; empty when there are none.
 */
export type TrustedProxies = readonly IpNetwork[]

/** What {@link clientIp} returns for a socket that has no address. */
export const UNKNOWN_CLIENT_IP = 'unknown'

/**
 * Reads `API_TRUSTED_PROXIES`: comma-separated IPv4 and IPv6 addresses
 * and CIDR networks (`10.0.0.0/8, 2001:db8::/32, 192.0.2.7`). An address
 * alone is a /32 or /128; an IPv4-mapped entry (`::ffff:10.0.0.0/104`) is
 * the IPv4 network. IPv4 clients, mapped or not, match only IPv4 networks.
 * Empty entries are ignored, so empty text means no trusted proxies.
 *
 * @throws Error naming the bad entry: not an address, a prefix out of
 *   range, or bits set past the prefix (`10.0.0.1/8`, most likely a typo).
 */
export function parseTrustedProxies(text: string): TrustedProxies {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map(parseTrustedProxy)
}

/**
 * The address of the client that sent a request, in canonical form (IPv4
 * dotted, IPv4-mapped IPv6 as IPv4, IPv6 per RFC 5952).
 *
 * It is the socket's peer, unless that peer is a trusted proxy: only then
 * is `X-Forwarded-For` read (every instance, in order), right to left,
 * skipping trusted hops, and the first untrusted hop is the client. If
 * every hop is trusted, the leftmost is. A hop that is not an address
 * (`unknown`, garbage) ends the walk: the client is then the trusted hop
 * nearest to it, so text a client wrote can never become its address
 * unless a trusted hop vouched for it.
 *
 * @param socketAddress - The socket's `remoteAddress`; `undefined` once the
 *   socket closed, which gives {@link UNKNOWN_CLIENT_IP}.
 * @param forwardedFor - The `X-Forwarded-For` header, as Node gives it.
 */
export function clientIp(
  socketAddress: string | undefined,
  forwardedFor: string | readonly string[] | undefined,
  trustedProxies: TrustedProxies,
): string {
  const peer = socketAddress === undefined ? undefined : parseIp(socketAddress)
  if (peer === undefined) return UNKNOWN_CLIENT_IP
  if (!isTrusted(peer, trustedProxies)) return formatIp(peer)

  const hops = forwardedHops(forwardedFor)
  return formatIp(nearestUntrustedHop(peer, hops, trustedProxies))
}

/**
 * The key a client is rate limited by: an IPv4 address as itself, an IPv6
 * address by its /64 network (`2001:db8:1:2::/64`), since one subscriber
 * usually holds a whole /64. Any spelling of an address gives the same
 * key, and IPv4-mapped IPv6 gives the IPv4 address. Text that is not an
 * address (such as {@link UNKNOWN_CLIENT_IP}) is returned unchanged.
 */
export function rateLimitKey(ip: string): string {
  const bytes = parseIp(ip)
  if (bytes === undefined) return ip
  if (bytes.length === 4) return formatIp(bytes)
  return `${formatIp(maskBits(bytes, 64))}/64`
}

function parseTrustedProxy(entry: string): IpNetwork {
  const [address = '', prefix, extra] = entry.split('/')
  const literal = parseIpLiteral(address)
  if (literal === undefined || extra !== undefined) {
    throw new Error(`trusted proxy "${entry}" is not an IP address or CIDR`)
  }

  const maxBits = literal.length * 8
  const bits = prefix === undefined ? maxBits : parsePrefix(prefix)
  if (bits === undefined || bits > maxBits) {
    throw new Error(
      `trusted proxy "${entry}" needs a prefix length from 0 to ${maxBits}`,
    )
  }

  return network(entry, ...ipv4IfMapped(literal, bits))
}

function parsePrefix(text: string): number | undefined {
  return /^\d{1,3}$/.test(text) ? Number(text) : undefined
}

/** A mapped network of /96 or longer is the IPv4 network it maps. */
function ipv4IfMapped(bytes: IpBytes, bits: number): [IpBytes, number] {
  if (!isMappedIpv4(bytes) || bits < 96) return [bytes, bits]
  return [bytes.slice(12), bits - 96]
}

function network(entry: string, bytes: IpBytes, bits: number): IpNetwork {
  const masked = maskBits(bytes, bits)
  const cidr = `${formatIp(masked)}/${bits}`
  if (masked.some((byte, i) => byte !== bytes[i])) {
    throw new Error(
      `trusted proxy "${entry}" has bits set past its prefix (the network is ${cidr})`,
    )
  }
  return { cidr, bytes: masked, bits }
}

function isTrusted(bytes: IpBytes, trustedProxies: TrustedProxies): boolean {
  return trustedProxies.some((network) => inNetwork(bytes, network))
}

/** The entries of every `X-Forwarded-For` instance, left to right. */
function forwardedHops(
  header: string | readonly string[] | undefined,
): string[] {
  if (header === undefined) return []
  const joined = typeof header === 'string' ? header : header.join(',')
  return joined
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '')
}

/** Walks `hops` from the right, starting behind the trusted `peer`. */
function nearestUntrustedHop(
  peer: IpBytes,
  hops: readonly string[],
  trustedProxies: TrustedProxies,
): IpBytes {
  let nearest = peer
  for (let i = hops.length - 1; i >= 0; i -= 1) {
    const hop = parseForwardedHop(hops[i] ?? '')
    if (hop === undefined) return nearest
    if (!isTrusted(hop, trustedProxies)) return hop
    nearest = hop
  }
  return nearest
}

/**
 * One hop's address. Besides a bare literal, some proxies write a port
 * (`192.0.2.1:4711`, `[2001:db8::1]:4711`) or brackets (`[2001:db8::1]`).
 */
function parseForwardedHop(hop: string): IpBytes | undefined {
  const bracketed = /^\[([^\]]*:[^\]]*)\](?::\d{1,5})?$/.exec(hop)
  if (bracketed !== null) return parseIp(bracketed[1] ?? '')
  const withPort = /^([\d.]+):\d{1,5}$/.exec(hop)
  if (withPort !== null) return parseIp(withPort[1] ?? '')
  return parseIp(hop)
}
