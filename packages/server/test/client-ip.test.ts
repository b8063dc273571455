/**
 * Which address a request came from, and the key it is rate limited by:
 * X-Forwarded-For is believed only from trusted proxies, read right to
 * left; IPv4-mapped IPv6 is IPv4; IPv6 clients share a key per /64.
 */
import { BlockList } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  clientIp,
  parseTrustedProxies,
  rateLimitKey,
  type TrustedProxies,
  UNKNOWN_CLIENT_IP,
} from '../src/http/client-ip.js'
import {
  formatIp,
  type IpBytes,
  inNetwork,
  maskBits,
  parseIp,
} from '../src/http/ip-address.js'

const NONE: TrustedProxies = parseTrustedProxies('')
const PROXIES = parseTrustedProxies('10.0.0.0/8, 2001:db8:ffff::/48')

/** A repeatable source of numbers in [0, 1) (mulberry32). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

/** Random bytes, with many zero groups so that `::` gets exercised. */
function randomAddress(random: () => number, length: 4 | 16): number[] {
  const bytes: number[] = []
  while (bytes.length < length) {
    const zero = random() < 0.4
    bytes.push(zero ? 0 : Math.floor(random() * 256))
    bytes.push(zero ? 0 : Math.floor(random() * 256))
  }
  return bytes
}

/** The eight groups of an IPv6 address, in full, with leading zeros. */
function spelledOut(bytes: IpBytes, upper: boolean): string {
  const groups = Array.from({ length: 8 }, (_, i) =>
    (((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0))
      .toString(16)
      .padStart(4, '0'),
  )
  const text = groups.join(':')
  return upper ? text.toUpperCase() : text
}

/** The WHATWG URL parser's canonical IPv6 text, an independent oracle. */
function urlCanonical(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1)
}

describe('clientIp without trusted proxies', () => {
  it.each([
    '198.51.100.7',
    '198.51.100.7, 10.0.0.1',
    ['1.1.1.1', '2.2.2.2'],
    'unknown',
    '',
    undefined,
  ])('ignores X-Forwarded-For %j: the socket is the client', (header) => {
    expect(clientIp('203.0.113.9', header, NONE)).toBe('203.0.113.9')
  })

  it('ignores X-Forwarded-For from an untrusted socket even when proxies are named', () => {
    expect(clientIp('203.0.113.9', '198.51.100.7', PROXIES)).toBe('203.0.113.9')
  })

  it('gives the canonical form of the socket address', () => {
    expect(clientIp('2001:DB8:0:0:0:0:0:1', undefined, NONE)).toBe(
      '2001:db8::1',
    )
    expect(clientIp('fe80::1%eth0', undefined, NONE)).toBe('fe80::1')
  })

  it('reads an IPv4-mapped socket address as the IPv4 address', () => {
    expect(clientIp('::ffff:203.0.113.9', undefined, NONE)).toBe('203.0.113.9')
  })

  it('says unknown for a socket that has no address any more', () => {
    expect(clientIp(undefined, '198.51.100.7', PROXIES)).toBe(UNKNOWN_CLIENT_IP)
  })
})

describe('clientIp behind trusted proxies', () => {
  it('takes the right-most untrusted hop, not what the client wrote before it', () => {
    const header = '6.6.6.6, 198.51.100.7'

    expect(clientIp('10.0.0.1', header, PROXIES)).toBe('198.51.100.7')
  })

  it('skips a chain of trusted hops', () => {
    const header = '6.6.6.6, 198.51.100.7, 10.9.9.9, 10.0.0.5'

    expect(clientIp('10.0.0.1', header, PROXIES)).toBe('198.51.100.7')
  })

  it('takes the left-most hop when every hop is trusted', () => {
    expect(clientIp('10.0.0.1', '10.1.1.1, 10.2.2.2', PROXIES)).toBe('10.1.1.1')
  })

  it('falls back to the socket when the proxy sent no X-Forwarded-For', () => {
    expect(clientIp('10.0.0.1', undefined, PROXIES)).toBe('10.0.0.1')
    expect(clientIp('10.0.0.1', ' , ', PROXIES)).toBe('10.0.0.1')
  })

  it('reads every header instance, in order, as one list', () => {
    const instances = ['6.6.6.6, 198.51.100.7', '10.0.0.5']

    expect(clientIp('10.0.0.1', instances, PROXIES)).toBe('198.51.100.7')
    expect(clientIp('10.0.0.1', ['198.51.100.7', '10.0.0.5'], PROXIES)).toBe(
      '198.51.100.7',
    )
  })

  it('follows IPv6 proxies and gives the canonical IPv6 client', () => {
    const header = '2001:DB8:1:0:0:0:0:7, 2001:db8:ffff::2'

    expect(clientIp('2001:db8:ffff::1', header, PROXIES)).toBe('2001:db8:1::7')
  })

  it('reads IPv4-mapped addresses as IPv4, on the socket and in the header', () => {
    const header = '::ffff:198.51.100.7, ::ffff:10.0.0.5'

    expect(clientIp('::ffff:10.0.0.1', header, PROXIES)).toBe('198.51.100.7')
  })

  it('matches a proxy listed as IPv4-mapped against plain IPv4', () => {
    const mapped = parseTrustedProxies('::ffff:10.0.0.1')

    expect(clientIp('10.0.0.1', '198.51.100.7', mapped)).toBe('198.51.100.7')
  })

  it('does not match IPv4 clients against IPv6 networks', () => {
    const allIpv6 = parseTrustedProxies('::/0')

    expect(clientIp('10.0.0.1', '198.51.100.7', allIpv6)).toBe('10.0.0.1')
    expect(clientIp('::1', '198.51.100.7', allIpv6)).toBe('198.51.100.7')
  })

  it('accepts hops that carry a port or brackets', () => {
    expect(clientIp('10.0.0.1', '198.51.100.7:4711', PROXIES)).toBe(
      '198.51.100.7',
    )
    expect(clientIp('10.0.0.1', '[2001:db8::7]:443', PROXIES)).toBe(
      '2001:db8::7',
    )
    expect(clientIp('10.0.0.1', '[2001:db8::7]', PROXIES)).toBe('2001:db8::7')
  })

  it('skips empty list elements', () => {
    const header = '198.51.100.7,, 10.0.0.5 , '

    expect(clientIp('10.0.0.1', header, PROXIES)).toBe('198.51.100.7')
  })

  it.each([
    'unknown',
    'garbage',
    '_hidden',
    '1.2.3.4.5',
    '01.2.3.4',
    '256.1.1.1',
    '1.2.3',
    '198.51.100.7 203.0.113.1',
    '[1.2.3.4]',
    '[2001:db8::7',
    '1.2.3.4:',
    '1.2.3.4:123456',
    '2001:db8::7:80:',
    '::ffff:1.2.3',
    '<script>',
    'x'.repeat(10_000),
  ])(
    'stops at the malformed hop %j and takes the trusted hop nearest to it',
    (bad) => {
      const behindProxy = `198.51.100.7, ${bad}, 10.0.0.5`

      expect(clientIp('10.0.0.1', behindProxy, PROXIES)).toBe('10.0.0.5')
      expect(clientIp('10.0.0.1', bad, PROXIES)).toBe('10.0.0.1')
    },
  )

  it('trusts nothing past an untrusted hop, even a trusted-looking one', () => {
    const header = '10.7.7.7, 198.51.100.7, 10.0.0.5'

    expect(clientIp('10.0.0.1', header, PROXIES)).toBe('198.51.100.7')
  })
})

describe('trusted proxy networks', () => {
  it.each([
    ['172.16.0.0/12', '172.16.0.0', true],
    ['172.16.0.0/12', '172.31.255.255', true],
    ['172.16.0.0/12', '172.32.0.0', false],
    ['172.16.0.0/12', '172.15.255.255', false],
    ['192.0.2.7', '192.0.2.7', true],
    ['192.0.2.7', '192.0.2.8', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['2001:db8:8000::/33', '2001:db8:ffff::1', true],
    ['2001:db8:8000::/33', '2001:db8:7fff::1', false],
    ['2001:db8::1', '2001:db8:0:0:0:0:0:1', true],
    ['2001:db8::1', '2001:db8::2', false],
    ['::ffff:10.0.0.0/104', '10.200.0.1', true],
    ['::ffff:10.0.0.0/104', '11.0.0.1', false],
    ['fe80::/10', 'fe80::1%eth0', true],
  ])('%s holds %s: %s', (cidr, socket, trusted) => {
    const proxies = parseTrustedProxies(cidr)
    const expected = trusted ? '198.51.100.7' : clientIp(socket, '', NONE)

    expect(clientIp(socket, '198.51.100.7', proxies)).toBe(expected)
  })

  it('matches as node:net BlockList does, for random networks and addresses', () => {
    const random = seededRandom(42)
    for (let i = 0; i < 5_000; i += 1) {
      const length = random() < 0.5 ? 4 : 16
      const type = length === 4 ? 'ipv4' : 'ipv6'
      const bits = Math.floor(random() * (length * 8 + 1))
      const base = randomAddress(random, length)
      const network = maskBits(base, bits)
      const address = flipBitsAfter(base, random, length * 8 * random())
      if (length === 16 && parseIp(formatIp(address))?.length === 4) continue

      const blockList = new BlockList()
      blockList.addSubnet(formatIp(network), bits, type)
      const [range] = parseTrustedProxies(`${formatIp(network)}/${bits}`)

      expect(inNetwork(address, range!)).toBe(
        blockList.check(formatIp(address), type),
      )
    }
  })
})

describe('parseTrustedProxies', () => {
  it('reads addresses and networks, v4 and v6, in canonical form', () => {
    const proxies = parseTrustedProxies(
      ' 10.0.0.0/8, 192.0.2.7 ,2001:DB8:0:0::/32,, ::ffff:10.1.0.0/112,::1',
    )

    expect(proxies.map((p) => p.cidr)).toEqual([
      '10.0.0.0/8',
      '192.0.2.7/32',
      '2001:db8::/32',
      '10.1.0.0/16',
      '::1/128',
    ])
  })

  it('reads empty text as no trusted proxies', () => {
    expect(parseTrustedProxies('')).toEqual([])
    expect(parseTrustedProxies(' , ')).toEqual([])
  })

  it.each([
    ['banana', /"banana" is not an IP address or CIDR/],
    ['10.0.0.0/33', /"10.0.0.0\/33" needs a prefix length from 0 to 32/],
    ['2001:db8::/129', /needs a prefix length from 0 to 128/],
    ['10.0.0.0/', /needs a prefix length/],
    ['10.0.0.0/+8', /needs a prefix length/],
    ['10.0.0.0/8.0', /needs a prefix length/],
    ['10.0.0.0/8/8', /is not an IP address or CIDR/],
    ['/8', /is not an IP address or CIDR/],
    ['10.0.0.0 /8', /is not an IP address or CIDR/],
    ['010.0.0.1', /is not an IP address or CIDR/],
    ['1.2.3.4:80', /is not an IP address or CIDR/],
    ['[::1]', /is not an IP address or CIDR/],
    ['10.0.0.1/8', /"10.0.0.1\/8" has bits set past its prefix.*10.0.0.0\/8/],
    ['2001:db8::1/64', /has bits set past its prefix.*2001:db8::\/64/],
  ])('refuses %j with an error naming it', (text, message) => {
    expect(() => parseTrustedProxies(`192.0.2.1, ${text}`)).toThrow(message)
  })
})

describe('rateLimitKey', () => {
  it('keys IPv4 by the address itself, IPv4-mapped IPv6 included', () => {
    expect(rateLimitKey('198.51.100.7')).toBe('198.51.100.7')
    expect(rateLimitKey('::ffff:198.51.100.7')).toBe('198.51.100.7')
    expect(rateLimitKey('::FFFF:c633:6407')).toBe('198.51.100.7')
  })

  it('keys IPv6 by its /64, whatever the spelling', () => {
    const sameSubnet = [
      '2001:db8:1:2::1',
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0DB8:0001:0002:0000:0000:0000:0009',
      '2001:db8:1:2:0::',
    ]

    const keys = new Set(sameSubnet.map(rateLimitKey))

    expect([...keys]).toEqual(['2001:db8:1:2::/64'])
    expect(rateLimitKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64')
    expect(rateLimitKey('2001:db8::1')).toBe('2001:db8::/64')
    expect(rateLimitKey('::1')).toBe('::/64')
  })

  it('leaves text that is not an address as it is', () => {
    expect(rateLimitKey(UNKNOWN_CLIENT_IP)).toBe(UNKNOWN_CLIENT_IP)
  })

  it('gives one key and canonical text for random IPv6 spellings', () => {
    const random = seededRandom(9)
    for (let i = 0; i < 2_000; i += 1) {
      const bytes = randomAddress(random, 16)
      const canonical = urlCanonical(spelledOut(bytes, false))
      if (parseIp(canonical)?.length === 4) continue
      const prefix = urlCanonical(spelledOut(maskBits(bytes, 64), false))

      for (const spelling of [canonical, spelledOut(bytes, random() < 0.5)]) {
        expect(clientIp(spelling, undefined, NONE)).toBe(canonical)
        expect(rateLimitKey(spelling)).toBe(`${prefix}/64`)
      }
    }
  })
})

/** `bytes` with random bits flipped from bit `from` on. */
function flipBitsAfter(
  bytes: IpBytes,
  random: () => number,
  from: number,
): number[] {
  return bytes.map((byte, i) => {
    let result = byte
    for (let bit = 0; bit < 8; bit += 1) {
      if (8 * i + bit >= from && random() < 0.3) result ^= 0x80 >> bit
    }
    return result
  })
}
