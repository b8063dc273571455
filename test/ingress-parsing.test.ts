/**
 * Hardened body parsing on the real server process (DESIGN section 4,
 * issue 4): a UTF-8 BOM is ignored; duplicate keys, prototype keys, deep
 * nesting and integers beyond 2^53 are refused with 400 (never a 500) and
 * store nothing; slow and endless bodies time out with 408; and
 * `Expect: 100-continue` with an oversized `Content-Length` is refused with
 * 413 before any `100 Continue`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openConnection, post, type RawConnection } from './helpers/http.js'
import {
  expectError,
  readDatabase,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const MAX_BODY_BYTES = 4096
const BODY_TIMEOUT_MS = 400

/** Rows of the tables a send or webhook request writes to. */
function storedRows(databasePath: string): Record<string, number> {
  return readDatabase(databasePath, (db) =>
    Object.fromEntries(
      ['messages', 'conversations', 'inbound_events', 'idempotency_keys'].map(
        (table) => [
          table,
          (
            db.prepare(`select count(*) as n from ${table}`).get() as {
              n: number
            }
          ).n,
        ],
      ),
    ),
  )
}

/** A valid send as JSON text with `extra` spliced in before the last brace. */
function sendWith(extra: string): string {
  const text = JSON.stringify(smsSend())
  return `${text.slice(0, -1)},${extra}}`
}

/** `depth` nested arrays around a number: `[[[1]]]` has depth 3. */
function nestedArrays(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`
}

/** Request head for a raw socket, with `Connection: close`. */
function head(path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(
    ([name, value]) => `${name}: ${value}`,
  )
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('\r\n')}\r\n\r\n`
}

/** Collects everything the server writes on a connection, as text. */
function collect(connection: RawConnection): () => string {
  const chunks: Buffer[] = []
  connection.socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  return () => Buffer.concat(chunks).toString('latin1')
}

describe('hardened JSON parsing on the real server', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: {
        API_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
        API_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      },
    })
  })

  it('accepts a JSON body that starts with a UTF-8 byte order mark', async () => {
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(JSON.stringify(smsSend({ body: 'with a BOM' }))),
    ])
    const send = await post(server.url, '/api/messages/sms', body)
    expect(send.status, send.text).toBe(202)

    const hookBody = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(JSON.stringify(smsWebhook({ messaging_provider_id: 'BOM' }))),
    ])
    const hook = await post(server.url, '/api/webhooks/sms', hookBody)
    expect(hook.status, hook.text).toBe(202)
  })

  it('accepts 32 levels of nesting in an ignored field, the documented maximum', async () => {
    const answer = await post(
      server.url,
      '/api/messages/sms',
      sendWith(`"extra":${nestedArrays(31)}`),
    )
    expect(answer.status, answer.text).toBe(202)
  })

  const refused: ReadonlyArray<readonly [string, string]> = [
    ['a duplicate key', sendWith('"body":"the second body"')],
    ['a duplicate key in a nested object', sendWith('"x":{"a":1,"a":2}')],
    ['a __proto__ key', sendWith('"__proto__":{"polluted":true}')],
    ['a nested __proto__ key', sendWith('"x":[{"__proto__":{"y":1}}]')],
    ['a constructor key', sendWith('"constructor":{"prototype":{}}')],
    ['a prototype key', sendWith('"prototype":1')],
    ['33 levels of nesting', sendWith(`"extra":${nestedArrays(32)}`)],
    ['1,500 levels of nesting', sendWith(`"extra":${nestedArrays(1500)}`)],
    ['an integer of 2^53 + 1', sendWith('"extra":9007199254740993')],
    ['a negative integer beyond -2^53', sendWith('"extra":-9007199254740993')],
    ['a number of 1e300', sendWith('"extra":1e300')],
    ['an id beyond 2^53 in a webhook', ''],
  ]

  it.each(refused)(
    'refuses %s with 400 invalid_json and stores nothing',
    async (_, text) => {
      const before = storedRows(server.databasePath)
      const answer =
        text === ''
          ? await post(
              server.url,
              '/api/webhooks/sms',
              JSON.stringify(smsWebhook()).replace(
                '"SM-default"',
                '12345678901234567890',
              ),
            )
          : await post(server.url, '/api/messages/sms', text)

      expectError(answer, 400, 'invalid_json')
      expect(storedRows(server.databasePath)).toEqual(before)
    },
  )

  const badStrings: ReadonlyArray<readonly [string, string, string]> = [
    ['a NUL character in a JSON string', 'body', String.raw`"a\u0000b"`],
    ['a lone high surrogate in a JSON string', 'body', String.raw`"a\ud800b"`],
    ['a lone low surrogate in a JSON string', 'to', String.raw`"\udc00"`],
    ['a NUL character in a form field', 'form', 'Body=a%00b'],
  ]

  it.each(badStrings)(
    'refuses %s with 400 validation_failed and stores nothing',
    async (_, field, value) => {
      const before = storedRows(server.databasePath)
      const answer =
        field === 'form'
          ? await post(
              server.url,
              '/api/webhooks/sms',
              `From=%2B12025550123&To=%2B18045551234&MessageSid=SM-nul&NumMedia=0&${value}`,
              { 'content-type': 'application/x-www-form-urlencoded' },
            )
          : await post(
              server.url,
              '/api/messages/sms',
              JSON.stringify(smsSend()).replace(
                new RegExp(`"${field}":"[^"]*"`),
                `"${field}":${value}`,
              ),
            )

      expectError(answer, 400, 'validation_failed')
      expect(storedRows(server.databasePath)).toEqual(before)
    },
  )

  it('keeps the server whole after the refusals: no prototype was polluted and sends still work', async () => {
    const answer = await post(
      server.url,
      '/api/messages/sms',
      smsSend({ body: 'after the storm' }),
    )
    expect(answer.status, answer.text).toBe(202)
    expect(answer.body).not.toHaveProperty('polluted')
    const logged = server.logLines()
    expect(logged.some((line) => line.level === 'error')).toBe(false)
    expect(logged.some((line) => line.status === 500)).toBe(false)
  })

  it('answers 408 to a body that stops arriving, and closes the connection', async () => {
    const before = storedRows(server.databasePath)
    const connection = await openConnection(server.url)
    const body = JSON.stringify(smsSend())
    const started = performance.now()
    await connection.write(
      head('/api/messages/sms', {
        'Content-Type': 'application/json',
        'Content-Length': body.length,
      }) + body.slice(0, 20),
    )

    const answer = await connection.response(5000)
    const waited = performance.now() - started
    connection.close()

    expectError(answer, 408, 'request_timeout')
    expect(answer.headers.connection).toBe('close')
    expect(waited).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50)
    expect(storedRows(server.databasePath)).toEqual(before)
  })

  it('answers 408 to an endless chunked body that trickles in, whatever the pace', async () => {
    const connection = await openConnection(server.url)
    await connection.write(
      head('/api/messages/sms', {
        'Content-Type': 'application/json',
        'Transfer-Encoding': 'chunked',
      }),
    )
    const trickle = setInterval(() => {
      if (!connection.ended) connection.socket.write('1\r\n \r\n')
    }, 50)
    try {
      const answer = await connection.response(5000)
      expectError(answer, 408, 'request_timeout')
    } finally {
      clearInterval(trickle)
      connection.close()
    }
  })

  it('refuses Expect: 100-continue with a Content-Length over the limit with 413, never sending 100 Continue', async () => {
    const connection = await openConnection(server.url)
    const received = collect(connection)
    await connection.write(
      head('/api/messages/sms', {
        'Content-Type': 'application/json',
        'Content-Length': MAX_BODY_BYTES + 1,
        Expect: '100-continue',
      }),
    )

    const answer = await connection.response(5000)
    connection.close()

    expect(received().startsWith('HTTP/1.1 413 ')).toBe(true)
    expect(received()).not.toMatch(/100 Continue/i)
    expectError(answer, 413, 'payload_too_large')
    expect(answer.headers.connection).toBe('close')
  })

  it('answers Expect: 100-continue within the limit with 100 Continue, then takes the body', async () => {
    const before = storedRows(server.databasePath)
    const connection = await openConnection(server.url)
    const received = collect(connection)
    const body = JSON.stringify(smsSend({ body: 'after a 100 Continue' }))
    await connection.write(
      head('/api/messages/sms', {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        Expect: '100-continue',
        Connection: 'close',
      }),
    )
    await waitFor(() => received().includes('\r\n\r\n'))
    expect(received().startsWith('HTTP/1.1 100 Continue\r\n')).toBe(true)

    await connection.write(body)
    await waitFor(() => /HTTP\/1\.1 202 /.test(received()))
    connection.close()
    expect(storedRows(server.databasePath).messages).toBe(before.messages! + 1)
  })
})

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const started = performance.now()
  while (!check()) {
    if (performance.now() - started > timeoutMs) {
      throw new Error('timed out waiting for the server')
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
