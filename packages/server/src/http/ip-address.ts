// IP address literals as bytes: parsing, the canonical text of RFC 5952,
// and prefix matching. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is read as the
// IPv4 address everywhere, so that a dual-stack socket and an IPv4 socket
// see the same client.

import { isIPv4, isIPv6 } from 'node:net'

/** An address's bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = readonly number[]

/** A network: an address and the number of leading bits that count. */
export interface IpNetwork {
  /** The network in canonical CIDR text, such as `10.0.0.0/8`. */
  readonly cidr: string
  /** The network's address, 4 or 16 bytes, with no bits past the prefix. */
  readonly bytes: IpBytes
  /** The prefix length in bits, up to 32 (IPv4) or 128 (IPv6). */
  readonly bits: number
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

/**
 * The bytes of an IPv4 or IPv6 literal (no brackets, no port; an IPv6 zone
 * such as `%eth0` is dropped), with IPv4-mapped IPv6 read as IPv4;
 * `undefined` for anything else.
 */
export function parseIp(text: string): IpBytes | undefined {
  const bytes = parseIpLiteral(text)
  return bytes === undefined ? undefined : unmapIpv4(bytes)
}

/** Like {@link parseIp}, but keeps IPv4-mapped IPv6 as 16 bytes. */
export function parseIpLiteral(text: string): IpBytes | undefined {
  if (isIPv4(text)) return text.split('.').map(Number)
  const address = withoutZone(text)
  if (!isIPv6(address)) return undefined
  return ipv6Bytes(address)
}

/** Whether `bytes` are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isMappedIpv4(bytes: IpBytes): boolean {
  return bytes.length === 16 && MAPPED_PREFIX.every((b, i) => bytes[i] === b)
}

/** The canonical text of an address: dotted IPv4, or IPv6 per RFC 5952. */
export function formatIp(bytes: IpBytes): string {
  if (bytes.length === 4) return bytes.join('.')
  return formatIpv6(bytes)
}

/** Whether `bytes` lie in `network` (an IPv4 address never in an IPv6 one). */
export function inNetwork(bytes: IpBytes, network: IpNetwork): boolean {
  if (bytes.length !== network.bytes.length) return false
  const whole = network.bits >> 3
  for (let i = 0; i < whole; i += 1) {
    if (bytes[i] !== network.bytes[i]) return false
  }

  const partial = network.bits & 7
  if (partial === 0) return true
  const mask = (0xff << (8 - partial)) & 0xff
  return (((bytes[whole] ?? 0) ^ (network.bytes[whole] ?? 0)) & mask) === 0
}

/** `bytes` with every bit past the first `bits` cleared. */
export function maskBits(bytes: IpBytes, bits: number): IpBytes {
  return bytes.map((byte, i) => {
    const kept = Math.min(Math.max(bits - 8 * i, 0), 8)
    return byte & ((0xff << (8 - kept)) & 0xff)
  })
}

function unmapIpv4(bytes: IpBytes): IpBytes {
  return isMappedIpv4(bytes) ? bytes.slice(12) : bytes
}

function withoutZone(text: string): string {
  const percent = text.indexOf('%')
  return percent === -1 ? text : text.slice(0, percent)
}

/** The 16 bytes of a literal that `isIPv6` accepted. */
function ipv6Bytes(text: string): IpBytes {
  const [head = '', tail] = text.split('::')
  const left = ipv6Groups(head)
  const right = tail === undefined ? [] : ipv6Groups(tail)
  const zeros = new Array<number>(8 - left.length - right.length).fill(0)

  return [...left, ...zeros, ...right].flatMap((g) => [g >> 8, g & 0xff])
}

/** The 16-bit groups of one side of `::`; a dotted tail is two groups. */
function ipv6Groups(part: string): number[] {
  if (part === '') return []
  return part.split(':').flatMap((piece) => {
    if (!piece.includes('.')) return [Number.parseInt(piece, 16)]
    const [a = 0, b = 0, c = 0, d = 0] = piece.split('.').map(Number)
    return [(a << 8) | b, (c << 8) | d]
  })
}

function formatIpv6(bytes: IpBytes): string {
  const groups = Array.from(
    { length: 8 },
    (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0),
  )
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':')
  const run = longestZeroRun(groups)
  if (run.length < 2) return hex(groups)

  const before = groups.slice(0, run.start)
  const after = groups.slice(run.start + run.length)
  return `${hex(before)}::${hex(after)}`
}

/** The first longest run of zero groups (RFC 5952 compresses it). */
function longestZeroRun(groups: readonly number[]) {
  let best = { start: 0, length: 0 }
  let start = -1
  for (let i = 0; i <= groups.length; i += 1) {
    if (i < groups.length && groups[i] === 0) {
      if (start === -1) start = i
      continue
    }
    if (start !== -1 && i - start > best.length) {
      best = { start, length: i - start }
    }
    start = -1
  }
  return best
}
