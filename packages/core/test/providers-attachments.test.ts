import { Agent, fetch as undiciFetch } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type AttachmentFetchOptions,
  type ConnectLookup,
  fetchAttachment,
  type LookupAddress,
  publicAddressLookup,
} from '../src/providers/attachments.js'
import {
  isPrivateHostName,
  nonPublicReason,
  parseIp,
} from '../src/providers/private-address.js'
import {
  dnsError,
  fakeLookup,
  fetchRoutingName,
  fetchThatMustNotRun,
  file,
  redirect,
  type Route,
  startTestServer,
  status,
  type TestServer,
} from './providers-support.js'

describe('nonPublicReason', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.100.100.200', 'shared (CGNAT)'],
    ['169.254.169.254', 'link-local'],
    ['192.0.0.192', 'reserved'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'private (unique local)'],
    ['fd00:ec2::254', 'private (unique local)'],
    ['fe80::1%eth0', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped link-local'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['64:ff9b::192.168.0.1', 'NAT64 private'],
    ['2002:7f00:1::', '6to4 loopback'],
    ['::127.0.0.1', 'IPv4-compatible loopback'],
    ['2001:db8::1', 'documentation'],
  ])('refuses %s as %s', (address, reason) => {
    expect(nonPublicReason(address)).toBe(reason)
  })

  it.each([
    '8.8.8.8',
    '93.184.216.34',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
  ])('accepts the public address %s', (address) => {
    expect(nonPublicReason(address)).toBeUndefined()
  })

  it('refuses text that is not an IP address', () => {
    expect(nonPublicReason('example.com')).toBe('not an IP address')
    expect(nonPublicReason('1.2.3')).toBe('not an IP address')
    expect(nonPublicReason('1::2::3')).toBe('not an IP address')
  })
})

describe('parseIp', () => {
  it('reads IPv4, compressed IPv6, brackets and a trailing dotted quad', () => {
    expect(parseIp('1.2.3.4')).toEqual([1, 2, 3, 4])
    expect(parseIp('[::1]')).toEqual([...Array(15).fill(0), 1])
    expect(parseIp('::ffff:1.2.3.4')?.slice(10)).toEqual([
      0xff, 0xff, 1, 2, 3, 4,
    ])
  })

  it('rejects malformed addresses', () => {
    for (const text of ['256.1.1.1', '1.2.3.4.5', '01234::', ':::', '1:2']) {
      expect(parseIp(text), text).toBeUndefined()
    }
  })
})

describe('isPrivateHostName', () => {
  it('knows localhost and .internal names', () => {
    expect(isPrivateHostName('localhost')).toBe(true)
    expect(isPrivateHostName('api.localhost.')).toBe(true)
    expect(isPrivateHostName('metadata.google.internal')).toBe(true)
    expect(isPrivateHostName('example.com')).toBe(false)
  })
})

describe('fetchAttachment', () => {
  let server: TestServer | undefined

  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  const limits = {
    maxBytes: 1024,
    timeoutMs: 2000,
    allowPrivate: true,
  } satisfies AttachmentFetchOptions

  async function serve(routes: Readonly<Record<string, Route>>) {
    server = await startTestServer(routes)
    return server
  }

  describe('on a host that may be fetched', () => {
    it('reads the body and the content type', async () => {
      const { url } = await serve({
        '/cat.png': file('PNGDATA', { 'content-type': 'image/png' }),
      })

      const result = await fetchAttachment(`${url}/cat.png`, limits)

      expect(result).toMatchObject({
        kind: 'fetched',
        contentType: 'image/png',
      })
      if (result.kind !== 'fetched') return
      expect(Buffer.from(result.content).toString()).toBe('PNGDATA')
    })

    it('follows up to three redirects, and not a fourth', async () => {
      const { url } = await serve({
        '/a': redirect('/b'),
        '/b': redirect('/c', 301),
        '/c': redirect('/d', 307),
        '/d': file('done'),
        '/loop': redirect('/loop'),
      })

      const followed = await fetchAttachment(`${url}/a`, limits)
      const looping = await fetchAttachment(`${url}/loop`, limits)

      expect(followed).toMatchObject({ kind: 'fetched' })
      expect(followed.kind === 'fetched' && followed.url.pathname).toBe('/d')
      expect(looping).toEqual({
        kind: 'permanent',
        error: `attachment ${url}/loop: more than 3 redirects`,
      })
    })

    it('refuses a body whose Content-Length is over the limit', async () => {
      const { url } = await serve({ '/big': file('x'.repeat(2000)) })

      const result = await fetchAttachment(`${url}/big`, limits)

      expect(result).toEqual({
        kind: 'permanent',
        error: `attachment ${url}/big: larger than the 1024-byte limit`,
      })
    })

    it('stops reading a body without Content-Length once it passes the limit', async () => {
      let written = 0
      const { url } = await serve({
        '/stream': (_request, response) => {
          response.writeHead(200, { 'content-type': 'video/mp4' })
          const timer = setInterval(() => {
            written += 512
            response.write(Buffer.alloc(512))
          }, 1)
          response.once('close', () => clearInterval(timer))
        },
      })

      const result = await fetchAttachment(`${url}/stream`, limits)

      expect(result).toMatchObject({
        kind: 'permanent',
        error: expect.stringContaining('larger than the 1024-byte limit'),
      })
      expect(written).toBeLessThan(100 * 512)
    })

    it('gives up when the time cap passes (transient)', async () => {
      const { url } = await serve({ '/slow': () => undefined })

      const result = await fetchAttachment(`${url}/slow`, {
        ...limits,
        timeoutMs: 100,
      })

      expect(result).toEqual({
        kind: 'transient',
        error: `attachment ${url}/slow: not fetched in 100 ms`,
      })
    })

    it('reports `aborted` when the caller aborts', async () => {
      const { url } = await serve({ '/slow': () => undefined })
      const controller = new AbortController()
      setTimeout(() => controller.abort(), 50)

      const result = await fetchAttachment(`${url}/slow`, {
        ...limits,
        signal: controller.signal,
      })

      expect(result).toEqual({ kind: 'transient', error: 'aborted' })
    })

    it.each([
      [404, 'permanent'],
      [410, 'permanent'],
      [403, 'permanent'],
      [408, 'transient'],
      [429, 'transient'],
      [500, 'transient'],
      [503, 'transient'],
    ] as const)('treats HTTP %i as %s', async (code, kind) => {
      const { url } = await serve({ '/f': status(code) })

      const result = await fetchAttachment(`${url}/f`, limits)

      expect(result).toEqual({
        kind,
        error: `attachment ${url}/f: the host answered HTTP ${code}`,
      })
    })

    it('treats a refused connection as transient', async () => {
      const { url } = await serve({})
      await server?.close()
      server = undefined

      const result = await fetchAttachment(`${url}/gone`, limits)

      expect(result).toEqual({
        kind: 'transient',
        error: `attachment ${url}/gone: network error (ECONNREFUSED)`,
      })
    })

    it('leaves the query string out of errors', async () => {
      const { url } = await serve({})

      const result = await fetchAttachment(`${url}/f?signature=s3cr3t`, limits)

      expect(result.kind === 'fetched' ? '' : result.error).not.toContain(
        's3cr3t',
      )
    })
  })

  describe('when private hosts are not allowed', () => {
    const strict = {
      ...limits,
      allowPrivate: false,
      fetch: fetchThatMustNotRun(),
      lookup: fakeLookup({}),
    }

    it.each([
      ['http://127.0.0.1:2/x', 'loopback address 127.0.0.1'],
      ['http://[::1]/x', 'loopback address ::1'],
      ['http://10.0.0.1/x', 'private address 10.0.0.1'],
      ['http://169.254.169.254/latest/meta-data/', 'link-local address'],
      ['http://[::ffff:10.0.0.1]/x', 'IPv4-mapped private address'],
      ['http://[fd00:ec2::254]/x', 'private (unique local) address'],
      ['http://0x7f000001/x', 'loopback address 127.0.0.1'],
    ])('refuses %s before connecting', async (url, reason) => {
      const result = await fetchAttachment(url, strict)

      expect(result.kind).toBe('permanent')
      expect(result.kind === 'fetched' ? '' : result.error).toContain(reason)
    })

    it.each([
      'http://localhost:8080/x',
      'http://metadata.google.internal/computeMetadata/v1/',
    ])('refuses the private host name in %s without a lookup', async (url) => {
      const result = await fetchAttachment(url, strict)

      expect(result).toMatchObject({
        kind: 'permanent',
        error: expect.stringContaining('is a private host name'),
      })
    })

    it('refuses a name with any non-public address', async () => {
      const result = await fetchAttachment('http://files.example/a.png', {
        ...strict,
        lookup: fakeLookup({ 'files.example': ['93.184.216.34', '10.9.8.7'] }),
      })

      expect(result).toEqual({
        kind: 'permanent',
        error:
          'attachment http://files.example/a.png: files.example has the ' +
          'private address 10.9.8.7, not fetched ' +
          '(API_ATTACHMENT_ALLOW_PRIVATE allows it)',
      })
    })

    describe('DNS rebinding: a name checked public that resolves to a private address when the fetch connects', () => {
      // The check before the fetch sees a public address; the fetch's own
      // connection resolves the name to the loopback test server.
      const toLoopback = async (): Promise<LookupAddress[]> => [
        { address: '127.0.0.1', family: 4 },
      ]

      function fetchConnectingWith(lookup: ConnectLookup): typeof fetch {
        const dispatcher = new Agent({ connect: { lookup } })
        return (input, init) =>
          undiciFetch(String(input), {
            ...(init as object),
            dispatcher,
          }) as unknown as Promise<Response>
      }

      it('is refused when the fetch connects through publicAddressLookup, and nothing reaches the host', async () => {
        const { url } = await serve({ '/a.png': file('secret') })
        const port = new URL(url).port

        const result = await fetchAttachment(
          `http://files.example:${port}/a.png`,
          {
            ...strict,
            fetch: fetchConnectingWith(publicAddressLookup(toLoopback)),
            lookup: fakeLookup({ 'files.example': ['93.184.216.34'] }),
          },
        )

        expect(result).toEqual({
          kind: 'permanent',
          error:
            `attachment http://files.example:${port}/a.png: files.example ` +
            'has the loopback address 127.0.0.1 when connecting, not ' +
            'fetched (API_ATTACHMENT_ALLOW_PRIVATE allows it)',
        })
        expect(server?.hits).toEqual([])
      })

      it('reaches the host through the same resolver when nothing checks it when connecting', async () => {
        const { url } = await serve({ '/a.png': file('secret') })
        const port = new URL(url).port
        const unchecked: ConnectLookup = (_hostname, options, callback) => {
          void toLoopback().then((addresses) =>
            options.all === true
              ? callback(null, addresses)
              : callback(null, addresses[0]!.address, addresses[0]!.family),
          )
        }

        const result = await fetchAttachment(
          `http://files.example:${port}/a.png`,
          {
            ...strict,
            fetch: fetchConnectingWith(unchecked),
            lookup: fakeLookup({ 'files.example': ['93.184.216.34'] }),
          },
        )

        expect(result).toMatchObject({ kind: 'fetched' })
        expect(server?.hits).toEqual(['/a.png'])
      })
    })

    it('refuses a redirect to a private host', async () => {
      const { url } = await serve({
        '/a.png': redirect('http://10.0.0.1/secret'),
      })

      const result = await fetchAttachment('http://files.example/a.png', {
        ...strict,
        fetch: fetchRoutingName('files.example', url),
        lookup: fakeLookup({ 'files.example': ['93.184.216.34'] }),
      })

      expect(result).toMatchObject({
        kind: 'permanent',
        error: expect.stringContaining('has the private address 10.0.0.1'),
      })
      expect(server?.hits).toEqual(['/a.png'])
    })

    it('fetches from a public name', async () => {
      const { url } = await serve({ '/a.png': file('ok') })

      const result = await fetchAttachment('http://files.example/a.png', {
        ...strict,
        fetch: fetchRoutingName('files.example', url),
        lookup: fakeLookup({ 'files.example': ['93.184.216.34'] }),
      })

      expect(result).toMatchObject({ kind: 'fetched' })
    })

    it('treats a name that does not exist as permanent, a DNS failure as transient', async () => {
      const lookup = fakeLookup({
        'gone.example': dnsError('ENOTFOUND'),
        'flaky.example': dnsError('EAI_AGAIN'),
      })

      const gone = await fetchAttachment('http://gone.example/x', {
        ...strict,
        lookup,
      })
      const flaky = await fetchAttachment('http://flaky.example/x', {
        ...strict,
        lookup,
      })

      expect(gone).toMatchObject({ kind: 'permanent' })
      expect(flaky).toEqual({
        kind: 'transient',
        error:
          'attachment http://flaky.example/x: DNS lookup of flaky.example ' +
          'failed (EAI_AGAIN)',
      })
    })
  })

  it.each(['file:///etc/passwd', 'ftp://example.com/x', 'not a url'])(
    'refuses %s (http and https only)',
    async (url) => {
      const result = await fetchAttachment(url, {
        ...limits,
        fetch: fetchThatMustNotRun(),
      })

      expect(result.kind).toBe('permanent')
    },
  )

  it('refuses a redirect to another scheme', async () => {
    const { url } = await serve({ '/x': redirect('file:///etc/passwd') })

    const result = await fetchAttachment(`${url}/x`, limits)

    expect(result).toEqual({
      kind: 'permanent',
      error: `attachment ${url}/x: file: URLs are not fetched, only http(s)`,
    })
  })

  it('checks its limits', async () => {
    await expect(
      fetchAttachment('http://x.example/', { ...limits, maxBytes: 0 }),
    ).rejects.toThrow(/maxBytes must be a whole number of at least 1/)
  })
})

describe('publicAddressLookup', () => {
  function lookUp(
    lookup: ConnectLookup,
    hostname: string,
    all: boolean,
  ): Promise<{ address: string | LookupAddress[]; family?: number }> {
    return new Promise((resolve, reject) =>
      lookup(hostname, { all }, (error, address, family) =>
        error === null ? resolve({ address, family }) : reject(error),
      ),
    )
  }

  const resolver =
    (answers: Record<string, string[]>) =>
    async (hostname: string): Promise<LookupAddress[]> => {
      const answer = answers[hostname]
      if (answer === undefined) throw new Error(`no lookup of ${hostname}`)
      return answer.map((address) => ({
        address,
        family: address.includes(':') ? 6 : 4,
      }))
    }

  it('gives every address, or the first, of a public name', async () => {
    const lookup = publicAddressLookup(
      resolver({ 'files.example': ['93.184.216.34', '2606:4700::1'] }),
    )

    expect(await lookUp(lookup, 'files.example', true)).toEqual({
      address: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:4700::1', family: 6 },
      ],
      family: undefined,
    })
    expect(await lookUp(lookup, 'files.example', false)).toEqual({
      address: '93.184.216.34',
      family: 4,
    })
  })

  it.each([
    [['93.184.216.34', '10.9.8.7'], 'has the private address 10.9.8.7'],
    [['::1'], 'has the loopback address ::1'],
    [['169.254.169.254'], 'has the link-local address 169.254.169.254'],
    [[], 'has no address'],
  ])('refuses a name that resolves to %j', async (answers, reason) => {
    const lookup = publicAddressLookup(resolver({ 'files.example': answers }))

    for (const all of [true, false]) {
      await expect(lookUp(lookup, 'files.example', all)).rejects.toThrow(
        `files.example ${reason}`,
      )
    }
  })

  it('refuses a private host name without resolving it', async () => {
    const lookup = publicAddressLookup(resolver({}))

    await expect(lookUp(lookup, 'metadata.internal', true)).rejects.toThrow(
      'metadata.internal is a private host name',
    )
  })
})
