import { mkdtemp, rm } from 'node:fs/promises'
import {
  get,
  request as httpRequest,
  type IncomingHttpHeaders,
} from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '@parley/core'
import {
  createJsonLogger,
  loadConfig,
  type RunningServer,
  startServer,
} from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'

let dir: string | undefined
let running: RunningServer | undefined

afterEach(async () => {
  await running?.shutdown()
  running = undefined
  if (dir) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

async function start(env: Record<string, string> = {}): Promise<RunningServer> {
  dir = await mkdtemp(join(tmpdir(), 'parley-server-'))
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: join(dir, 'parley.db'),
    ...env,
  })
  running = await startServer({ config, logger: silentLogger })
  return running
}

function getOnNewConnection(
  url: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      let text = ''
      response.on('data', (chunk) => (text += String(chunk)))
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text,
        }),
      )
    }).on('error', reject)
  })
}

describe('startServer', () => {
  it('names DATABASE_URL when the database cannot be reached at start', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    const attempt = start({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/parley',
    })

    await expect(attempt).rejects.toThrow(
      /^DATABASE_URL: cannot use Postgres at 127\.0\.0\.1:1\/parley: /,
    )
  })

  it('listens on a free loopback port, serves the API and shuts down with 0', async () => {
    const server = await start()
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
    expect(server.port).toBeGreaterThan(0)

    const response = await fetch(`${server.url}/api/messages/sms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        from: '+18045551234',
        to: '+12025550123',
        type: 'sms',
        body: 'in process',
        attachments: null,
        timestamp: '2024-11-01T14:00:00Z',
      }),
    })
    expect(response.status).toBe(202)
    expect(await response.json()).toEqual({
      status: 'accepted',
      id: '1',
      conversation_id: '1',
    })
    const page = await server.parley.conversations.list()
    expect(page.total).toBe(1)

    const first = server.shutdown()
    expect(server.shutdown()).toBe(first)
    expect(await first).toBe(0)
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
    running = undefined
  })

  it('answers readyz and new requests 503 while a request in flight finishes', async () => {
    const server = await start()
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
    const body = JSON.stringify({
      from: 'ann@customer.example',
      to: 'support@parley.example',
      body: '<p>in flight</p>',
      attachments: [],
      timestamp: '2024-11-01T14:00:00Z',
    })
    const socket = connect(server.port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    const answer = new Promise<string>((resolve) => {
      let text = ''
      socket.on('data', (chunk) => {
        text += String(chunk)
        if (text.includes('"status":"accepted"')) resolve(text)
      })
    })
    socket.write(
      'POST /api/messages/email HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
        body.slice(0, 10),
    )
    await new Promise((resolve) => setTimeout(resolve, 50))

    const closing = server.shutdown()
    // A new connection: shutdown closed the idle one fetch kept alive.
    const ready = await getOnNewConnection(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(ready.headers.connection).toBe('close')
    expect(JSON.parse(ready.text)).toMatchObject({ code: 'unavailable' })

    socket.write(body.slice(10))
    expect(await answer).toMatch(/^HTTP\/1\.1 202/)
    expect(await closing).toBe(0)
    socket.destroy()
    running = undefined
  })
})

// The header names of one answer, lower-cased, in the order sent.
function headerNames(
  url: string,
  options: { method: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; names: string[]; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { ...options, agent: false }, (response) => {
      response.resume()
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          names: response.rawHeaders
            .filter((_, i) => i % 2 === 0)
            .map((name) => name.toLowerCase()),
          headers: response.headers,
        }),
      )
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

describe('answer headers', () => {
  const COMMON = [
    'x-request-id',
    'x-content-type-options',
    'x-frame-options',
    'cache-control',
    'referrer-policy',
    'content-security-policy',
  ]
  const RATE = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']
  const BODY = ['content-type', 'content-length']
  const NODE = ['date', 'connection']

  it('carries the request id, the security, rate-limit and body headers once each', async () => {
    const server = await start()
    const sent = await headerNames(`${server.url}/api/messages/sms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'abc-1' },
      body: JSON.stringify({
        from: '+18045551234',
        to: '+12025550123',
        type: 'sms',
        body: 'headers',
        timestamp: '2024-11-01T14:00:00Z',
      }),
    })
    expect(sent.status).toBe(202)
    expect(sent.headers['x-request-id']).toBe('abc-1')
    expect(sent.names).toEqual([...COMMON, ...RATE, ...BODY, ...NODE])

    const wrong = await headerNames(`${server.url}/api/messages/sms`, {
      method: 'GET',
    })
    expect(wrong.status).toBe(405)
    expect(wrong.headers.allow).toBe('POST')
    expect(wrong.names).toEqual([...COMMON, ...RATE, 'allow', ...BODY, ...NODE])

    const head = await headerNames(`${server.url}/healthz`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.names).toEqual([...COMMON, ...BODY, ...NODE])
    expect(head.headers['content-length']).toBe(
      String(Buffer.byteLength('{"status":"ok"}')),
    )
  })
})

describe('createJsonLogger', () => {
  it('writes one JSON object per line with time, level, event and fields', () => {
    const lines: string[] = []
    const logger = createJsonLogger('info', (line) => lines.push(line))
    logger.info('thing.happened', { id: 7, name: 'x' })
    expect(lines).toHaveLength(1)
    expect(lines[0]?.endsWith('\n')).toBe(true)
    const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>
    expect(record).toMatchObject({
      level: 'info',
      event: 'thing.happened',
      id: 7,
      name: 'x',
    })
    expect(new Date(String(record.time)).toISOString()).toBe(record.time)
  })

  it('writes time, level and event first, then the fields in their order', () => {
    const lines: string[] = []
    const logger = createJsonLogger('info', (line) => lines.push(line))
    logger.warn('a.b', { z: 1, a: 'q"', skipped: undefined })
    logger.info('c.d')
    logger.info('e.f', {})
    expect(
      lines.map((line) => line.replace(/"time":"[^"]+"/, '"time":"T"')),
    ).toEqual([
      '{"time":"T","level":"warn","event":"a.b","z":1,"a":"q\\""}\n',
      '{"time":"T","level":"info","event":"c.d"}\n',
      '{"time":"T","level":"info","event":"e.f"}\n',
    ])
  })

  it('lets a field named time, level or event replace the leading one', () => {
    const lines: string[] = []
    const logger = createJsonLogger('info', (line) => lines.push(line))
    logger.info('outer', { event: 'inner', extra: 2 })
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'info',
      event: 'inner',
      extra: 2,
    })
    expect(lines[0]?.match(/"event"/g)).toHaveLength(1)
  })

  it.each<[string, unknown]>([
    ['an array', [1, 2]],
    ['null', null],
    ['a number', 5],
    ['an object with toJSON', { toJSON: (): string => 'weird', kept: 1 }],
    [
      'an object whose toJSON gives nothing',
      { toJSON: (): undefined => undefined },
    ],
  ])(
    'writes one JSON object, and throws nothing, for fields that are %s',
    (_, fields) => {
      const lines: string[] = []
      const logger = createJsonLogger('info', (line) => lines.push(line))
      logger.info('odd', fields as never)
      expect(lines).toHaveLength(1)
      const line = JSON.parse(lines[0] ?? '')
      expect(line).toMatchObject({ level: 'info', event: 'odd' })
      expect(typeof line.time).toBe('string')
    },
  )

  it('drops lines below its level', () => {
    const lines: string[] = []
    const logger = createJsonLogger('warn', (line) => lines.push(line))
    logger.debug('a')
    logger.info('b')
    logger.warn('c')
    logger.error('d')
    expect(lines.map((line) => JSON.parse(line).event)).toEqual(['c', 'd'])
  })

  it('still writes a line when a field cannot be serialized', () => {
    const lines: string[] = []
    const logger = createJsonLogger('info', (line) => lines.push(line))
    logger.error('odd.fields', { big: 10n })
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'error',
      event: 'odd.fields',
    })
  })
})
