// Which IP addresses an attachment fetch must not reach: anything that is
// not a public unicast address, so that a message cannot make Parley read
// from its own host, its private network or a cloud metadata service.

/** A block of addresses and why it is refused. */
interface Block {
  /** The network's address, 4 bytes (IPv4) or 16 bytes (IPv6). */
  readonly network: readonly number[]
  /** Prefix length in bits. */
  readonly bits: number
  readonly reason: string
}

/** How an IPv6 block embeds an IPv4 address that must be checked too. */
interface Embedding {
  readonly network: readonly number[]
  readonly bits: number
  /** Byte offset of the embedded IPv4 address. */
  readonly at: number
  readonly name: string
}

const IPV4_BLOCKS: readonly Block[] = [
  block('0.0.0.0/8', 'unspecified'),
  block('10.0.0.0/8', 'private'),
  block('100.64.0.0/10', 'shared (CGNAT)'),
  block('127.0.0.0/8', 'loopback'),
  // Includes 169.254.169.254, the metadata service of most clouds.
  block('169.254.0.0/16', 'link-local'),
  block('172.16.0.0/12', 'private'),
  // Includes 192.0.0.192, a cloud metadata address.
  block('192.0.0.0/24', 'reserved'),
  block('192.0.2.0/24', 'documentation'),
  block('192.168.0.0/16', 'private'),
  block('198.18.0.0/15', 'benchmarking'),
  block('198.51.100.0/24', 'documentation'),
  block('203.0.113.0/24', 'documentation'),
  block('224.0.0.0/4', 'multicast'),
  block('240.0.0.0/4', 'reserved'),
]

const IPV6_BLOCKS: readonly Block[] = [
  block('::/128', 'unspecified'),
  block('::1/128', 'loopback'),
  block('64:ff9b:1::/48', 'private (local NAT64)'),
  block('100::/64', 'reserved (discard)'),
  block('2001::/32', 'reserved (Teredo)'),
  block('2001:db8::/32', 'documentation'),
  // Includes fd00:ec2::254, a cloud metadata address.
  block('fc00::/7', 'private (unique local)'),
  block('fe80::/10', 'link-local'),
  block('fec0::/10', 'private (site-local)'),
  block('ff00::/8', 'multicast'),
]

const EMBEDDINGS: readonly Embedding[] = [
  embedding('::ffff:0:0/96', 12, 'IPv4-mapped'),
  embedding('64:ff9b::/96', 12, 'NAT64'),
  embedding('2002::/16', 2, '6to4'),
]

// Deprecated IPv4-compatible addresses (::a.b.c.d); `::` and `::1` are
// blocked on their own, so this one is checked last.
const IPV4_COMPATIBLE = embedding('::/96', 12, 'IPv4-compatible')

/**
 * Why `address` (an IPv4 or IPv6 literal, as `dns.lookup` returns them) is
 * not a public unicast address, such as `loopback` or `IPv4-mapped
 * private`; `undefined` when it is public. Text that is not an IP address
 * is refused too.
 */
export function nonPublicReason(address: string): string | undefined {
  const bytes = parseIp(address)
  if (bytes === undefined) return 'not an IP address'
  if (bytes.length === 4) return blockReason(IPV4_BLOCKS, bytes)
  return ipv6Reason(bytes)
}

/**
 * Host names that never lead to a public host, refused before any DNS
 * query: `localhost` and its subdomains (RFC 6761), and names under
 * `.internal` (reserved for private use, and used by cloud metadata
 * services).
 */
export function isPrivateHostName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '')
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === 'internal' ||
    name.endsWith('.internal')
  )
}

function ipv6Reason(bytes: readonly number[]): string | undefined {
  for (const { network, bits, at, name } of EMBEDDINGS) {
    if (!inBlock(bytes, network, bits)) continue
    const reason = blockReason(IPV4_BLOCKS, bytes.slice(at, at + 4))
    return reason === undefined ? undefined : `${name} ${reason}`
  }
  const reason = blockReason(IPV6_BLOCKS, bytes)
  if (reason !== undefined) return reason
  if (!inBlock(bytes, IPV4_COMPATIBLE.network, IPV4_COMPATIBLE.bits)) {
    return undefined
  }
  return `IPv4-compatible ${blockReason(IPV4_BLOCKS, bytes.slice(12)) ?? 'address'}`
}

function blockReason(
  blocks: readonly Block[],
  bytes: readonly number[],
): string | undefined {
  return blocks.find((b) => inBlock(bytes, b.network, b.bits))?.reason
}

function inBlock(
  bytes: readonly number[],
  network: readonly number[],
  bits: number,
): boolean {
  if (bytes.length !== network.length) return false
  for (let bit = 0; bit < bits; bit += 8) {
    const mask = bits - bit >= 8 ? 0xff : (0xff << (8 - (bits - bit))) & 0xff
    const index = bit / 8
    if (((bytes[index] ?? 0) & mask) !== ((network[index] ?? 0) & mask)) {
      return false
    }
  }
  return true
}

function block(cidr: string, reason: string): Block {
  const [address = '', bits = ''] = cidr.split('/')
  const network = parseIp(address)
  if (network === undefined) throw new Error(`bad block ${cidr}`)
  return { network, bits: Number(bits), reason }
}

function embedding(cidr: string, at: number, name: string): Embedding {
  const { network, bits } = block(cidr, name)
  return { network, bits, at, name }
}

/**
 * The bytes of an IPv4 (dotted quad) or IPv6 literal, or `undefined`. IPv6
 * may use `::`, a trailing dotted quad, brackets and a zone (`%eth0`).
 */
export function parseIp(text: string): number[] | undefined {
  const address = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '')
  return address.includes(':') ? parseIpv6(address) : parseIpv4(address)
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  const bytes = parts.map((part) =>
    /^\d{1,3}$/.test(part) ? Number(part) : NaN,
  )
  return bytes.every((byte) => byte <= 255) ? bytes : undefined
}

function parseIpv6(text: string): number[] | undefined {
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const head = groupsOf(halves[0] ?? '')
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  const groups = [...head, ...Array<number>(missing).fill(0), ...tail]
  return groups.flatMap((group) => [group >> 8, group & 0xff])
}

// The 16-bit groups of one side of `::`; a trailing dotted quad counts as
// two groups.
function groupsOf(text: string): number[] | undefined {
  if (text === '') return []
  const parts = text.split(':')
  const last = parts[parts.length - 1] ?? ''
  const groups: number[] = []
  for (const part of parts.slice(0, -1)) {
    if (!/^[0-9a-f]{1,4}$/i.test(part)) return undefined
    groups.push(parseInt(part, 16))
  }
  if (last.includes('.')) {
    const quad = parseIpv4(last)
    if (quad === undefined) return undefined
    const [a = 0, b = 0, c = 0, d = 0] = quad
    return [...groups, (a << 8) | b, (c << 8) | d]
  }
  if (!/^[0-9a-f]{1,4}$/i.test(last)) return undefined
  return [...groups, parseInt(last, 16)]
}
