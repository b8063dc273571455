/**
 * Requests that Node's HTTP parser refuses before the app sees them still
 * get Parley's JSON error body and headers.
 */
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post } from './helpers/http.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

let server: ServerProcess

beforeAll(async () => {
  server = await startServerProcess()
})
afterAll(cleanUpServers)

// Sends raw bytes and reads until the server closes the connection.
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1')
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    socket.write(bytes)
  })
}

function parse(raw: string) {
  const [head = '', body = ''] = raw.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(
    lines.map((line) => {
      const at = line.indexOf(':')
      return [line.slice(0, at).toLowerCase(), line.slice(at + 1).trim()]
    }),
  )
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

describe('requests refused by the HTTP parser', () => {
  it.each([
    [
      'conflicting Content-Length and Transfer-Encoding',
      'POST /api/messages/sms HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['a broken request line', 'GARBAGE\r\n\r\n'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost x\r\n\r\n'],
  ])('answer %s with a JSON 400', async (_, bytes) => {
    const answer = parse(await exchange(bytes))

    expect(answer.status).toBe(400)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'invalid_request' })
    expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(answer.headers['x-content-type-options']).toBe('nosniff')
  })

  it('answers oversized headers with a JSON 431', async () => {
    const raw = await exchange(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    )
    const answer = parse(raw)

    expect(answer.status).toBe(431)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'headers_too_large' })
  })

  it('answers an Expect other than 100-continue with a JSON 417', async () => {
    const raw = await exchange(
      'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n',
    )
    const answer = parse(raw)

    expect(answer.status).toBe(417)
    expect(JSON.parse(answer.body)).toMatchObject({
      code: 'expectation_failed',
    })
    expect(answer.headers['x-frame-options']).toBe('DENY')
  })

  it.each([
    ['without Host', 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'],
    [
      'with two Host headers',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n',
    ],
    [
      'with two Host headers spelled differently',
      'GET /healthz HTTP/1.0\r\nhost: a\r\nHOST: a\r\nConnection: close\r\n\r\n',
    ],
  ])('answers an HTTP/1.x request %s with a JSON 400', async (_, raw) => {
    const answer = parse(await exchange(raw))

    expect(answer.status).toBe(400)
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'invalid_request' })
    expect(answer.headers['content-type']).toMatch(/^application\/json/)
    expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(answer.headers['x-content-type-options']).toBe('nosniff')
  })

  it('writes one http.request line for each of these answers', async () => {
    const answers = [
      await exchange('GARBAGE\r\n\r\n'),
      await exchange(
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      ),
      await exchange(
        'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\nConnection: close\r\n\r\n',
      ),
      await exchange('GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'),
    ].map(parse)

    for (const answer of answers) {
      const id = answer.headers['x-request-id']
      const { value: line } = await pollUntil(
        () =>
          server
            .logLines()
            .find(
              (item) => item.event === 'http.request' && item.request_id === id,
            ),
        { timeoutMs: 3000 },
      )
      expect(line).toMatchObject({
        status: answer.status,
        code: JSON.parse(answer.body).code,
      })
    }
  })

  it('stays up afterwards', async () => {
    const health = await fetch(`${server.url}/healthz`)
    expect(health.status).toBe(200)
  })
})

describe('status callbacks with unstorable ids', () => {
  it.each(['SM\u0000x', 'SM\ud800'])(
    'refuses the id %j with 400 rather than failing in storage',
    async (sid) => {
      const answer = await post(server.url, '/api/webhooks/sms/status', {
        MessageSid: sid,
        MessageStatus: 'delivered',
      })
      expect(answer.status).toBe(400)
      expect(answer.body.code).toBe('validation_failed')
    },
  )
})

describe('a good request followed by bad bytes on one connection', () => {
  it('still answers the good request with its own status, then closes', async () => {
    const body = JSON.stringify({
      from: '+18045551234',
      to: '+12025550123',
      type: 'sms',
      body: 'pipelined',
      timestamp: '2024-11-01T14:00:00Z',
    })
    const raw = await exchange(
      `POST /api/messages/sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}garbage after it`,
    )

    expect(parse(raw).status).toBe(202)
  })
})

describe('SendGrid event posts', () => {
  it('refuses more than 1000 events in one post, storing nothing', async () => {
    const events = Array.from({ length: 1001 }, (_, i) => ({
      event: 'delivered',
      sg_message_id: `m${i}.filter`,
    }))
    const answer = await post(server.url, '/api/webhooks/email/events', events)

    expect(answer.status).toBe(413)
    expect(answer.body.code).toBe('payload_too_large')
  })
})
