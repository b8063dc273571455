/**
 * The client IP the per-IP limit keys on, on the real server process
 * (DESIGN section 6, issue 4): the socket address, unless
 * `API_TRUSTED_PROXIES` names the peer as a proxy; only then is
 * `X-Forwarded-For` read, right to left, skipping trusted hops. Every
 * request here comes from 127.0.0.1; small limits make the buckets visible
 * through `RateLimit-Remaining`.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { get, type JsonResponse } from './helpers/http.js'
import { expectError, readMetrics } from './helpers/parley.js'
import { cleanUpServers, startServerProcess } from './helpers/server-process.js'

afterAll(cleanUpServers)

/** GET /api/conversations, with `X-Forwarded-For` when given. */
function read(base: string, forwardedFor?: string): Promise<JsonResponse> {
  return get(
    base,
    '/api/conversations',
    forwardedFor === undefined ? {} : { 'X-Forwarded-For': forwardedFor },
  )
}

/** The status and `RateLimit-Remaining` of an answer. */
function outcome(response: JsonResponse): [number, number] {
  return [response.status, Number(response.headers.get('ratelimit-remaining'))]
}

describe('client IP without trusted proxies', () => {
  it('ignores a spoofed X-Forwarded-For: every request from 127.0.0.1 shares one bucket, whatever the header says', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: { API_RATE_LIMIT_PER_IP_PER_MIN: '5' },
    })

    const spoofs = [
      undefined,
      '198.51.100.1',
      '203.0.113.2, 198.51.100.3',
      '2001:db8::1',
      'unknown',
      '198.51.100.4',
    ]
    const answers: JsonResponse[] = []
    for (const spoof of spoofs) answers.push(await read(server.url, spoof))

    expect(answers.slice(0, 5).map(outcome)).toEqual([
      [200, 4],
      [200, 3],
      [200, 2],
      [200, 1],
      [200, 0],
    ])
    expectError(answers[5] as JsonResponse, 429, 'rate_limited')
    expect((await readMetrics(server.url)).rate_limited).toBe(1)
  })
})

describe('client IP behind a trusted proxy', () => {
  it('keys the limit on the X-Forwarded-For client when the peer is a trusted proxy, taking the right-most untrusted hop', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: {
        API_RATE_LIMIT_PER_IP_PER_MIN: '3',
        API_TRUSTED_PROXIES: '127.0.0.1',
      },
    })
    const url = server.url

    // One client exhausts its own bucket...
    const first = [
      await read(url, '198.51.100.7'),
      await read(url, '198.51.100.7'),
      await read(url, '198.51.100.7'),
      await read(url, '198.51.100.7'),
    ]
    expect(first.map(outcome)).toEqual([
      [200, 2],
      [200, 1],
      [200, 0],
      [429, 0],
    ])
    expectError(first[3] as JsonResponse, 429, 'rate_limited')

    // ...while other clients, and the proxy itself, have theirs.
    expect(outcome(await read(url, '198.51.100.8'))).toEqual([200, 2])
    expect(outcome(await read(url))).toEqual([200, 2])
    // A hop that is not an address ends the walk at the proxy that added it.
    expect(outcome(await read(url, 'not-an-address'))).toEqual([200, 1])

    // A trusted hop is skipped: the client is the hop before it.
    expect(outcome(await read(url, '198.51.100.7, 127.0.0.1'))).toEqual([
      429, 0,
    ])
    // What a client writes to the left of the hop the proxy added does not
    // change its key...
    expect(outcome(await read(url, '10.1.2.3, 198.51.100.7'))).toEqual([429, 0])
    // ...and the right-most untrusted hop is the client.
    expect(outcome(await read(url, '198.51.100.7, 203.0.113.50'))).toEqual([
      200, 2,
    ])
    expect(outcome(await read(url, '203.0.113.50'))).toEqual([200, 1])

    expect((await readMetrics(url)).rate_limited).toBe(3)
  })

  it('limits IPv6 clients per /64 and counts an IPv4-mapped address as the IPv4 address', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: {
        API_RATE_LIMIT_PER_IP_PER_MIN: '3',
        API_TRUSTED_PROXIES: '127.0.0.1',
      },
    })
    const url = server.url

    expect(outcome(await read(url, '2001:db8:1:2::1'))).toEqual([200, 2])
    expect(outcome(await read(url, '2001:db8:1:2::ffff'))).toEqual([200, 1])
    expect(outcome(await read(url, '[2001:db8:1:2:aaaa::9]:4711'))).toEqual([
      200, 0,
    ])
    expect(outcome(await read(url, '2001:DB8:1:2:0:0:0:2'))).toEqual([429, 0])
    expect(outcome(await read(url, '2001:db8:1:3::1'))).toEqual([200, 2])

    expect(outcome(await read(url, '198.51.100.9'))).toEqual([200, 2])
    expect(outcome(await read(url, '::ffff:198.51.100.9'))).toEqual([200, 1])
  })
})
