/**
 * `Expect: 100-continue` over a raw loopback socket, against a plain
 * `node:http` server of the test's own whose listener reads bodies with
 * the server's real body reader (413 before reading when the declared
 * length is too large).
 */
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '@parley/core'
import { loadConfig, startServer } from '@parley/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readBody } from '../src/http/body.js'
import {
  declaredLength,
  installCheckContinue,
} from '../src/http/expect-continue.js'
import { HttpError } from '../src/http/http-error.js'

const MAX_BODY_BYTES = 100
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

let server: Server
let port = 0
// Body bytes the listener received, across all requests.
let bodyBytesRead = 0
let requestsSeen = 0

async function answer(
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  requestsSeen += 1
  try {
    const body = await readBody(request, {
      maxBytes: MAX_BODY_BYTES,
      timeoutMs: 5_000,
    })
    bodyBytesRead += body.length
    response.setHeader('Content-Type', 'application/json')
    response.end(JSON.stringify({ received: body.toString('utf8') }))
  } catch (error) {
    const status = error instanceof HttpError ? error.status : 500
    response.statusCode = status
    response.end(JSON.stringify({ status }))
  }
}

beforeAll(async () => {
  server = createServer((request, response) => {
    void answer(request, response)
  })
  installCheckContinue(server, { maxBodyBytes: MAX_BODY_BYTES })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

/** A loopback socket that keeps everything the server sent. */
class RawClient {
  received = ''
  closed = false
  private readonly socket: Socket
  private readonly waiters = new Set<() => void>()

  constructor(to = port) {
    this.socket = connect(to, '127.0.0.1')
    this.socket.setEncoding('latin1')
    this.socket.on('data', (chunk: string) => {
      this.received += chunk
      this.notify()
    })
    this.socket.on('close', () => {
      this.closed = true
      this.notify()
    })
    this.socket.on('error', () => undefined)
  }

  write(text: string): void {
    this.socket.write(text)
  }

  /** Resolves once `done` holds for what was received, else rejects. */
  until(done: (client: this) => boolean, timeoutMs = 3_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done(this)) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`timed out; got ${JSON.stringify(this.received)}`))
      }, timeoutMs)
      this.waiters.add(check)
      check()
    })
  }

  /** Waits a little to show nothing more arrives. */
  async quietFor(ms: number): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, ms))
    return this.received
  }

  close(): void {
    this.socket.destroy()
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter()
  }
}

function head(length: number | 'chunked', expect = true): string {
  const framing =
    length === 'chunked'
      ? 'Transfer-Encoding: chunked'
      : `Content-Length: ${length}`
  return [
    'POST /api/messages/sms HTTP/1.1',
    'Host: 127.0.0.1',
    'Content-Type: application/json',
    framing,
    ...(expect ? ['Expect: 100-continue'] : []),
    '',
    '',
  ].join('\r\n')
}

const hasFinalResponse = (client: RawClient) =>
  /HTTP\/1\.1 [2-5]\d\d [^\r]*\r\n[\s\S]*\r\n\r\n/.test(
    client.received.replace(CONTINUE, ''),
  )

describe('installCheckContinue', () => {
  it('refuses a declared body over the limit with 413, never sending 100', async () => {
    const client = new RawClient()
    const readBefore = bodyBytesRead

    client.write(head(MAX_BODY_BYTES + 1))
    await client.until((c) => c.closed)

    expect(client.received).toMatch(/^HTTP\/1\.1 413 /)
    expect(client.received).not.toContain('100 Continue')
    expect(client.received.toLowerCase()).toContain('connection: close')
    expect(bodyBytesRead).toBe(readBefore)
  })

  it('sends 100 Continue for a body within the limit, then serves it', async () => {
    const client = new RawClient()

    client.write(head(MAX_BODY_BYTES))
    await client.until((c) => c.received.length > 0)
    expect(client.received).toBe(CONTINUE)
    expect(await client.quietFor(50)).toBe(CONTINUE)
    client.write('x'.repeat(MAX_BODY_BYTES))
    await client.until(hasFinalResponse)
    client.close()

    expect(client.received).toMatch(
      /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /,
    )
    expect(client.received).toContain(`"received":"${'x'.repeat(100)}"`)
  })

  it('sends 100 Continue for a chunked body and still enforces the limit while reading', async () => {
    const small = new RawClient()
    small.write(head('chunked'))
    await small.until((c) => c.received === CONTINUE)
    small.write('3\r\nabc\r\n0\r\n\r\n')
    await small.until(hasFinalResponse)
    small.close()
    expect(small.received).toContain('"received":"abc"')

    const large = new RawClient()
    large.write(head('chunked'))
    await large.until((c) => c.received === CONTINUE)
    large.write(`65\r\n${'y'.repeat(101)}\r\n0\r\n\r\n`)
    await large.until(hasFinalResponse)
    large.close()
    expect(large.received).toContain('HTTP/1.1 413 ')
  })

  it('leaves requests without Expect as they were, once each', async () => {
    const before = requestsSeen
    const client = new RawClient()

    client.write(`${head(2, false)}ok`)
    await client.until(hasFinalResponse)
    client.close()

    expect(client.received).toMatch(/^HTTP\/1\.1 200 /)
    expect(client.received).toContain('"received":"ok"')
    expect(requestsSeen).toBe(before + 1)
  })

  it('keeps the connection for the next request after a 100 Continue', async () => {
    const client = new RawClient()

    client.write(head(1))
    await client.until((c) => c.received === CONTINUE)
    client.write('a')
    await client.until(hasFinalResponse)
    const first = client.received
    client.write(`${head(1, false)}b`)
    await client.until(
      (c) =>
        c.received.length > first.length && /"received":"b"/.test(c.received),
    )
    client.close()

    expect(client.received.match(/HTTP\/1\.1 200 /g)).toHaveLength(2)
  })

  it('refuses options that are not a byte count', () => {
    expect(() =>
      installCheckContinue(createServer(), { maxBodyBytes: -1 }),
    ).toThrow(/maxBodyBytes.*got -1/)
  })
})

describe('declaredLength', () => {
  it.each([
    [{ 'content-length': '12' }, 12],
    [{}, 0],
    [{ 'content-length': 'abc' }, 0],
  ])('reads %j as %d', (headers, length) => {
    expect(declaredLength({ headers } as unknown as IncomingMessage)).toBe(
      length,
    )
  })
})

describe('Expect: 100-continue on the running server', () => {
  it('refuses an oversized declared body with a JSON 413 and no 100 Continue', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-expect-'))
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: join(dir, 'parley.db'),
      API_MAX_BODY_BYTES: '1024',
    })
    const running = await startServer({ config, logger: silentLogger })
    try {
      const client = new RawClient(running.port)

      client.write(head(1025))
      await client.until((c) => c.closed)

      expect(client.received).toMatch(/^HTTP\/1\.1 413 /)
      expect(client.received).not.toContain('100 Continue')
      expect(client.received).toContain('"code":"payload_too_large"')
      expect(client.received).toMatch(/X-Request-Id: /i)
    } finally {
      await running.shutdown()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
