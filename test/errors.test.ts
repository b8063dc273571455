/**
 * Every validation rule and every error status of the HTTP contract
 * (DESIGN section 4), sent to the real server process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  get,
  openConnection,
  post,
  rawRequest,
  request,
} from './helpers/http.js'
import {
  detailFields,
  emailSend,
  emailWebhook,
  expectCommonHeaders,
  expectError,
  queueStates,
  readDatabase,
  readMetrics,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import {
  cleanUpServers,
  launchServer,
  makeTempDir,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

let server: ServerProcess
// No SMS provider, a 2 KiB body limit and a 500 ms body timeout.
let restricted: ServerProcess

beforeAll(async () => {
  ;[server, restricted] = await Promise.all([
    startServerProcess(),
    startServerProcess({
      env: {
        API_SMS_PROVIDERS: '',
        API_MAX_BODY_BYTES: '2048',
        API_BODY_TIMEOUT_MS: '500',
      },
    }),
  ])
  // One message, so that GET and HEAD have something to read.
  const seeded = await post(server.url, '/api/messages/sms', smsSend())
  expect(seeded.status).toBe(202)
})

afterAll(cleanUpServers)

const SMS = '/api/messages/sms'
const EMAIL = '/api/messages/email'
const SMS_HOOK = '/api/webhooks/sms'
const EMAIL_HOOK = '/api/webhooks/email'
const URL_OK = 'https://cdn.parley.example/a.png'

function without(
  body: Record<string, unknown>,
  field: string,
): Record<string, unknown> {
  const copy = { ...body }
  delete copy[field]
  return copy
}

// JSON text whose `field` holds the raw escape `escape` (e.g. \u0000), so
// that the server's JSON parser, not the test's, makes the character.
function withEscape(
  body: Record<string, unknown>,
  field: string,
  escape: string,
): string {
  const marker = '__ESCAPE_MARKER__'
  const text = JSON.stringify({ ...body, [field]: `a${marker}b` })
  return text.replace(marker, escape)
}

interface ValidationCase {
  readonly name: string
  readonly path: string
  readonly body: unknown
  readonly fields: readonly string[]
}

const VALIDATION_CASES: readonly ValidationCase[] = [
  ...['from', 'to', 'type', 'body', 'timestamp'].map((field) => ({
    name: `a send without ${field}`,
    path: SMS,
    body: without(smsSend(), field),
    fields: [field],
  })),
  {
    name: 'an empty object, naming every missing field at once',
    path: SMS,
    body: {},
    fields: ['type', 'from', 'to', 'body', 'timestamp'],
  },
  {
    name: 'several bad fields at once',
    path: SMS,
    body: {
      from: 'nobody',
      to: 42,
      type: 'fax',
      body: '',
      attachments: 'x',
      timestamp: 'now',
    },
    fields: ['type', 'from', 'to', 'body', 'attachments', 'timestamp'],
  },
  {
    name: 'a numeric from',
    path: SMS,
    body: smsSend({ from: 18045551234 }),
    fields: ['from'],
  },
  {
    name: 'a numeric to',
    path: SMS,
    body: smsSend({ to: 12025550123 }),
    fields: ['to'],
  },
  {
    name: 'a numeric body',
    path: SMS,
    body: smsSend({ body: 42 }),
    fields: ['body'],
  },
  {
    name: 'a null body',
    path: SMS,
    body: smsSend({ body: null }),
    fields: ['body'],
  },
  {
    name: 'a numeric type',
    path: SMS,
    body: smsSend({ type: 1 }),
    fields: ['type'],
  },
  {
    name: 'attachments given as one string',
    path: SMS,
    body: smsSend({ type: 'mms', attachments: URL_OK }),
    fields: ['attachments'],
  },
  {
    name: 'attachments given as an object',
    path: SMS,
    body: smsSend({ attachments: { 0: URL_OK } }),
    fields: ['attachments'],
  },
  {
    name: 'a number among the attachments',
    path: SMS,
    body: smsSend({ type: 'mms', attachments: [URL_OK, 7] }),
    fields: ['attachments[1]'],
  },
  {
    name: 'a numeric timestamp',
    path: SMS,
    body: smsSend({ timestamp: 1730469600000 }),
    fields: ['timestamp'],
  },
  {
    name: 'type "fax"',
    path: SMS,
    body: smsSend({ type: 'fax' }),
    fields: ['type'],
  },
  {
    name: 'type "SMS" in capitals',
    path: SMS,
    body: smsSend({ type: 'SMS' }),
    fields: ['type'],
  },
  {
    name: 'type "email" on the SMS route',
    path: SMS,
    body: smsSend({ type: 'email' }),
    fields: ['type'],
  },
  {
    name: 'an MMS with null attachments',
    path: SMS,
    body: smsSend({ type: 'mms', attachments: null }),
    fields: ['attachments'],
  },
  {
    name: 'an MMS with no attachments ([])',
    path: SMS,
    body: smsSend({ type: 'mms', attachments: [] }),
    fields: ['attachments'],
  },
  {
    name: 'an inbound MMS with no attachments',
    path: SMS_HOOK,
    body: smsWebhook({ type: 'mms', attachments: [] }),
    fields: ['attachments'],
  },
  {
    name: 'an SMS with an empty body',
    path: SMS,
    body: smsSend({ body: '' }),
    fields: ['body'],
  },
  {
    name: 'an inbound SMS with an empty body',
    path: SMS_HOOK,
    body: smsWebhook({ body: '' }),
    fields: ['body'],
  },
  {
    name: 'an email with an empty body',
    path: EMAIL,
    body: emailSend({ body: '' }),
    fields: ['body'],
  },
  {
    name: 'an inbound email with an empty body',
    path: EMAIL_HOOK,
    body: emailWebhook({ body: '' }),
    fields: ['body'],
  },
  {
    name: 'nine attachments (the default limit is 8)',
    path: SMS,
    body: smsSend({
      type: 'mms',
      attachments: Array.from({ length: 9 }, (_, i) => `${URL_OK}?n=${i}`),
    }),
    fields: ['attachments'],
  },
  {
    name: 'nine attachments on an email',
    path: EMAIL,
    body: emailSend({
      attachments: Array.from({ length: 9 }, (_, i) => `${URL_OK}?n=${i}`),
    }),
    fields: ['attachments'],
  },
  ...[
    'ftp://files.parley.example/a.png',
    'javascript:alert(1)',
    'file:///etc/passwd',
    'data:image/png;base64,AAAA',
    'cdn.parley.example/a.png',
    '/relative/a.png',
    'https://',
    '',
  ].map((url) => ({
    name: `the attachment URL ${JSON.stringify(url)}`,
    path: SMS,
    body: smsSend({ type: 'mms', attachments: [URL_OK, url] }),
    fields: ['attachments[1]'],
  })),
  ...[
    '2024-11-01T14:00:00',
    '2024-11-01 14:00:00',
    '2024-11-01',
    '2024-02-30T10:00:00Z',
    '2023-02-29T10:00:00Z',
    '2024-13-01T10:00:00Z',
    '2024-11-01T24:00:00Z',
    '2024-11-01T14:60:00Z',
    '2024-11-01T14:00:00+25:00',
    'Fri, 01 Nov 2024 14:00:00 GMT',
    'yesterday',
    '',
  ].map((timestamp) => ({
    name: `the timestamp ${JSON.stringify(timestamp)}`,
    path: SMS,
    body: smsSend({ timestamp }),
    fields: ['timestamp'],
  })),
  ...[
    'not a number',
    '12',
    '+1 804 555 12345678',
    '804-555-1234 ext 5',
    '804-555-1234x5',
    '+1-800-FLOWERS',
    '++18045551234',
    '',
  ].map((to) => ({
    name: `the phone number ${JSON.stringify(to)}`,
    path: SMS,
    body: smsSend({ to }),
    fields: ['to'],
  })),
  {
    name: 'an alphanumeric sender ID on an outbound SMS',
    path: SMS,
    body: smsSend({ from: 'PARLEY' }),
    fields: ['from'],
  },
  ...[
    'not-an-email',
    'ann@',
    '@customer.example',
    'ann@localhost',
    '+tag@customer.example',
    'Ann <>',
    'ann@@customer.example',
  ].map((to) => ({
    name: `the email address ${JSON.stringify(to)}`,
    path: EMAIL,
    body: emailSend({ to }),
    fields: ['to'],
  })),
  {
    name: 'a numeric email subject',
    path: EMAIL,
    body: emailSend({ subject: 5 }),
    fields: ['subject'],
  },
  ...[
    ['a NUL character', '\\u0000'],
    ['a lone high surrogate', '\\ud800'],
    ['a lone low surrogate', '\\udc00'],
  ].flatMap(([what, escape = '']) => [
    {
      name: `${what} in an SMS body`,
      path: SMS,
      body: withEscape(smsSend(), 'body', escape),
      fields: ['body'],
    },
    {
      name: `${what} in an email subject`,
      path: EMAIL,
      body: withEscape(emailSend(), 'subject', escape),
      fields: ['subject'],
    },
    {
      name: `${what} in an inbound provider id`,
      path: SMS_HOOK,
      body: withEscape(smsWebhook(), 'messaging_provider_id', escape),
      fields: ['messaging_provider_id'],
    },
  ]),
  {
    name: 'a NUL character in an attachment URL',
    path: SMS,
    body: JSON.stringify(
      smsSend({ type: 'mms', attachments: ['__X__'] }),
    ).replace('__X__', `${URL_OK}\\u0000`),
    fields: ['attachments[0]'],
  },
  {
    name: 'an inbound SMS without messaging_provider_id',
    path: SMS_HOOK,
    body: without(smsWebhook(), 'messaging_provider_id'),
    fields: ['messaging_provider_id'],
  },
  {
    name: 'an inbound SMS with an empty messaging_provider_id',
    path: SMS_HOOK,
    body: smsWebhook({ messaging_provider_id: '' }),
    fields: ['messaging_provider_id'],
  },
  {
    name: 'an inbound SMS with a numeric messaging_provider_id',
    path: SMS_HOOK,
    body: smsWebhook({ messaging_provider_id: 12345 }),
    fields: ['messaging_provider_id'],
  },
  {
    name: 'an inbound email without xillio_id',
    path: EMAIL_HOOK,
    body: without(emailWebhook(), 'xillio_id'),
    fields: ['xillio_id'],
  },
  {
    name: 'an inbound email whose xillio_id is only spaces',
    path: EMAIL_HOOK,
    body: emailWebhook({ xillio_id: '   ' }),
    fields: ['xillio_id'],
  },
  ...['[]', 'null', '"a string"', '42', 'true'].map((text) => ({
    name: `the JSON value ${text} instead of an object`,
    path: SMS,
    body: text,
    fields: ['(body)'],
  })),
]

describe('validation', () => {
  it.each(VALIDATION_CASES)(
    'refuses $name with 400 validation_failed naming the field',
    async ({ path, body, fields }) => {
      if (typeof body === 'string' && body.includes('\\u')) {
        // The escape reaches the server as text, not as the character.
        expect(body).toMatch(/\\u(0000|d800|dc00)/)
      }
      const response = await post(server.url, path, body)
      expectError(response, 400, 'validation_failed')
      expect(new Set(detailFields(response.body))).toEqual(new Set(fields))
      for (const detail of response.body.details) {
        expect(detail.message).toEqual(expect.any(String))
      }
    },
  )

  it('accepts what the rules allow: 8 attachments, offsets, short codes, inbound sender IDs, an MMS without text and unknown fields', async () => {
    const accepted = [
      post(
        server.url,
        SMS,
        smsSend({
          type: 'mms',
          attachments: Array.from({ length: 8 }, (_, i) => `${URL_OK}?n=${i}`),
        }),
      ),
      post(
        server.url,
        SMS,
        smsSend({ type: 'mms', body: '', attachments: [URL_OK] }),
      ),
      post(
        server.url,
        SMS,
        smsSend({ timestamp: '2024-11-01T19:30:00.123456+05:30' }),
      ),
      post(server.url, SMS, smsSend({ from: '12345' })),
      post(server.url, SMS, smsSend({ something_else: { nested: true } })),
      post(
        server.url,
        SMS_HOOK,
        smsWebhook({ from: 'PARLEY', messaging_provider_id: 'SM-alpha' }),
      ),
      post(server.url, EMAIL, emailSend({ subject: null })),
      post(server.url, EMAIL, without(emailSend(), 'subject')),
    ]
    for (const response of await Promise.all(accepted)) {
      expect(response.status, response.text).toBe(202)
      expectCommonHeaders(response.headers)
    }
  })

  it('stores nothing for a refused request', async () => {
    // The webhooks of the tests before are threaded by the inbound worker
    // after their 202: wait until it is done, or its messages would count.
    await waitUntilSettled(server)
    const before = await readMetrics(server.url)
    const count = () =>
      readDatabase(
        server.databasePath,
        (db) =>
          (
            db.prepare('select count(*) as n from messages').get() as {
              n: number
            }
          ).n,
      )
    const messages = count()
    const response = await post(server.url, SMS, smsSend({ type: 'mms' }))
    expect(response.status).toBe(400)
    expect(count()).toBe(messages)
    const after = await readMetrics(server.url)
    expect(after.conversations_created).toBe(before.conversations_created)
    expect(after.conversations_reused).toBe(before.conversations_reused)
  })
})

describe('400 invalid_json', () => {
  it.each([
    ['malformed JSON', '{"from": "+18045551234",'],
    ['an empty body', ''],
    ['a body of white space', '  \n '],
    ['JSON with a trailing comma', '{"a": 1,}'],
    [
      'invalid UTF-8 bytes',
      Uint8Array.from([
        0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d,
      ]),
    ],
    ['a truncated UTF-8 sequence', Uint8Array.from([0x22, 0xe2, 0x82, 0x22])],
  ])('refuses %s', async (_, body) => {
    const response = await post(server.url, SMS, body)
    expectError(response, 400, 'invalid_json')
  })

  it('refuses malformed JSON on webhooks too', async () => {
    expectError(await post(server.url, SMS_HOOK, '{'), 400, 'invalid_json')
    expectError(await post(server.url, EMAIL_HOOK, '{'), 400, 'invalid_json')
  })

  it('accepts JSON that starts with a UTF-8 byte order mark', async () => {
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(JSON.stringify(smsSend({ body: 'with a BOM: é' }))),
    ])
    const response = await post(server.url, SMS, new Uint8Array(body))
    expect(response.status, response.text).toBe(202)
    const detail = await get(server.url, `/api/messages/${response.body.id}`)
    expect(detail.body.body).toBe('with a BOM: é')
  })
})

describe('404 not_found', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['GET', '/api'],
    ['GET', '/api/conversation'],
    ['GET', '/api/conversations/999/messages'],
    ['GET', '/api/conversations/abc/messages'],
    ['GET', '/api/conversations/-1/messages'],
    ['GET', '/api/conversations/1.5/messages'],
    ['GET', '/api/conversations/1/messages/1'],
    ['GET', '/api/messages/999'],
    ['GET', '/api/messages/abc'],
    ['GET', '/api/messages/0'],
    ['GET', '/api/messages/99999999999999999999999'],
    ['POST', '/api/messages/fax/send'],
    ['POST', '/api/webhook/sms'],
  ])('answers %s %s with 404', async (method, path) => {
    const response = await request(server.url, path, {
      method,
      body: method === 'POST' ? smsSend() : undefined,
    })
    expectError(response, 404, 'not_found')
  })

  it('finds an existing message and conversation by id', async () => {
    expect((await get(server.url, '/api/messages/1')).status).toBe(200)
    expect(
      (await get(server.url, '/api/conversations/1/messages')).status,
    ).toBe(200)
  })
})

describe('405 method_not_allowed', () => {
  it.each([
    ['DELETE', '/api/conversations', 'GET, HEAD'],
    ['POST', '/api/conversations', 'GET, HEAD'],
    ['PATCH', '/api/conversations/1/messages', 'GET, HEAD'],
    ['POST', '/metrics', 'GET, HEAD'],
    ['PUT', '/healthz', 'GET, HEAD'],
    ['DELETE', '/api/messages/1', 'GET, HEAD'],
    ['GET', '/api/messages/sms', 'POST'],
    ['HEAD', '/api/messages/email', 'POST'],
    ['PUT', '/api/messages/sms', 'POST'],
    ['GET', '/api/webhooks/sms', 'POST'],
    ['DELETE', '/api/webhooks/email', 'POST'],
  ])('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
    const response = await rawRequest(server.url, path, {
      method,
      headers: { accept: 'application/json' },
    })
    expect(response.status, response.text).toBe(405)
    expect(response.headers.allow).toBe(allow)
    if (method === 'HEAD') {
      expect(response.text).toBe('')
      expectCommonHeaders(response.headers)
    } else {
      expectError(response, 405, 'method_not_allowed')
    }
  })
})

describe('406 not_acceptable', () => {
  it.each([
    'text/html',
    'text/html, application/xhtml+xml',
    'application/xml',
    'image/*',
    'application/json;q=0',
    'text/*, application/json; q=0',
  ])('answers Accept: %s with 406', async (accept) => {
    const read = await get(server.url, '/api/conversations', { accept })
    expectError(read, 406, 'not_acceptable')
    const send = await post(server.url, SMS, smsSend(), { accept })
    expectError(send, 406, 'not_acceptable')
  })

  it.each([
    '*/*',
    'application/json',
    'APPLICATION/JSON',
    'application/*;q=0.5',
    'application/*',
    'text/html, */*;q=0.1',
    'text/html;q=0.9, application/json;q=0.1',
    'application/json; charset=utf-8',
  ])('accepts Accept: %s', async (accept) => {
    const read = await get(server.url, '/api/conversations', { accept })
    expect(read.status).toBe(200)
    const send = await post(server.url, SMS, smsSend(), { accept })
    expect(send.status).toBe(202)
  })

  it('accepts a request without an Accept header', async () => {
    const read = await rawRequest(server.url, '/api/conversations')
    expect(read.status).toBe(200)
    const send = await rawRequest(server.url, SMS, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(smsSend()),
    })
    expect(send.status, send.text).toBe(202)
  })

  it('does not store a send it refused for its Accept header', async () => {
    const body = smsSend({ body: 'refused for its Accept header' })
    const response = await post(server.url, SMS, body, { accept: 'text/html' })
    expect(response.status).toBe(406)
    const stored = readDatabase(server.databasePath, (db) =>
      db
        .prepare('select count(*) as n from messages where body = ?')
        .get(body.body),
    ) as { n: number }
    expect(stored.n).toBe(0)
  })
})

// A valid send padded with spaces to exactly `size` bytes.
function paddedSend(size: number, path = SMS): string {
  const text = JSON.stringify(path === EMAIL ? emailSend() : smsSend())
  return text.padEnd(size, ' ')
}

describe('413 payload_too_large', () => {
  it('accepts a body of exactly 1 MiB, the default limit', async () => {
    const body = paddedSend(1_048_576)
    expect(Buffer.byteLength(body)).toBe(1_048_576)
    const response = await post(server.url, SMS, body)
    expect(response.status, response.text).toBe(202)
  })

  it('refuses a body of 1 MiB + 1 byte', async () => {
    const response = await rawRequest(server.url, SMS, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: paddedSend(1_048_577),
    })
    expectError(response, 413, 'payload_too_large')
    expect(response.headers.connection).toBe('close')
  })

  it('refuses a chunked body once it passes 1 MiB', async () => {
    const response = await rawRequest(server.url, SMS, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: paddedSend(1_048_577),
      chunked: true,
    })
    expectError(response, 413, 'payload_too_large')
  })

  it('refuses a declared Content-Length over the limit before the body arrives', async () => {
    const connection = await openConnection(server.url)
    await connection.write(
      `POST ${SMS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{`,
    )
    const response = await connection.response(5000)
    connection.close()
    expectError(response, 413, 'payload_too_large')
  })

  it('honours a smaller API_MAX_BODY_BYTES', async () => {
    const fits = await post(restricted.url, EMAIL, paddedSend(2048, EMAIL))
    expect(fits.status, fits.text).toBe(202)
    const over = await rawRequest(restricted.url, EMAIL, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: paddedSend(2049, EMAIL),
    })
    expectError(over, 413, 'payload_too_large')
    expect(over.body.message).toContain('2048')
  })
})

describe('415 unsupported_media_type', () => {
  it.each([
    [SMS, 'text/plain'],
    [SMS, 'application/json; charset=iso-8859-1'],
    [SMS, 'application/json; charset=utf-16'],
    [SMS, 'application/x-www-form-urlencoded'],
    [SMS, 'multipart/form-data; boundary=x'],
    [SMS, 'application/jsonp'],
    [EMAIL, 'text/html'],
    [EMAIL_HOOK, 'application/x-www-form-urlencoded'],
    [EMAIL_HOOK, 'multipart/form-data; boundary=x'],
    [SMS_HOOK, 'text/xml'],
  ])('refuses POST %s with Content-Type %s', async (path, type) => {
    const response = await post(server.url, path, JSON.stringify(smsSend()), {
      'content-type': type,
    })
    expectError(response, 415, 'unsupported_media_type')
  })

  it.each([
    [SMS, 'application/json; charset=utf-8; charset=latin1', 'charset'],
    [SMS, 'application/json; charset=utf-8; Charset=utf-8', 'charset'],
    [EMAIL, 'application/json; v=1; v=2', 'v'],
    [SMS_HOOK, 'application/json; charset=utf-8; charset=latin1', 'charset'],
    [
      SMS_HOOK,
      'application/x-www-form-urlencoded; charset=utf-8; charset=latin1',
      'charset',
    ],
  ])(
    'refuses POST %s with the repeated parameter of %s',
    async (path, type, name) => {
      const form = new URLSearchParams({
        From: '+12025550123',
        To: '+18045551234',
        Body: 'twice',
        MessageSid: 'SM-repeated-charset',
        NumMedia: '0',
      })
      const body = type.includes('form')
        ? form.toString()
        : JSON.stringify(smsSend())
      const response = await post(server.url, path, body, {
        'content-type': type,
      })
      expectError(response, 415, 'unsupported_media_type')
      expect(response.body.message).toBe(
        `the Content-Type repeats its ${name} parameter; send each parameter once`,
      )
    },
  )

  it('refuses a Twilio form without MessageSid, naming messaging_provider_id', async () => {
    const form = new URLSearchParams({
      From: '+12025550123',
      To: '+18045551234',
      Body: 'no sid',
      NumMedia: '0',
    })
    const response = await post(server.url, SMS_HOOK, form.toString(), {
      'content-type': 'application/x-www-form-urlencoded',
    })
    expectError(response, 400, 'validation_failed')
    expect(detailFields(response.body)).toEqual(['messaging_provider_id'])
  })

  it('refuses a body without a Content-Type', async () => {
    const response = await rawRequest(server.url, SMS, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: JSON.stringify(smsSend()),
    })
    expectError(response, 415, 'unsupported_media_type')
  })

  it('accepts JSON with charset utf-8 in any spelling, and a form on the SMS webhook', async () => {
    for (const type of [
      'application/json; charset=utf-8',
      'application/json;charset="UTF-8"',
      'Application/JSON; Charset=utf8',
    ]) {
      const response = await post(server.url, SMS, smsSend(), {
        'content-type': type,
      })
      expect(response.status, type).toBe(202)
    }
    const form = new URLSearchParams({
      From: '+12025550123',
      To: '+18045551234',
      Body: 'form post',
      MessageSid: 'SM-form-415',
      NumMedia: '0',
    })
    const response = await post(server.url, SMS_HOOK, form.toString(), {
      'content-type': 'application/x-www-form-urlencoded',
    })
    expect(response.status, response.text).toBe(202)
  })
})

describe('422 no_route', () => {
  it('refuses a send whose family has no provider, stores nothing, and counts invalid_routing', async () => {
    await waitUntilSettled(restricted)
    const before = await readMetrics(restricted.url)
    const conversations = (await get(restricted.url, '/api/conversations')).body
      .meta.total
    const messages = () =>
      readDatabase(
        restricted.databasePath,
        (db) =>
          (
            db.prepare('select count(*) as n from messages').get() as {
              n: number
            }
          ).n,
      )
    const stored = messages()

    const sms = await post(restricted.url, SMS, smsSend())
    expectError(sms, 422, 'no_route')
    const mms = await post(
      restricted.url,
      SMS,
      smsSend({ type: 'mms', attachments: [URL_OK] }),
    )
    expectError(mms, 422, 'no_route')

    const after = await readMetrics(restricted.url)
    expect(after.invalid_routing - before.invalid_routing).toBe(2)
    expect(after.conversations_created).toBe(before.conversations_created)
    expect(
      (await get(restricted.url, '/api/conversations')).body.meta.total,
    ).toBe(conversations)
    expect(messages()).toBe(stored)
    const jobs = readDatabase(restricted.databasePath, (db) =>
      db.prepare('select count(*) as n from dispatch_jobs').get(),
    ) as { n: number }
    expect(jobs.n).toBe(stored)
  })

  it('validates before routing: a bad send is 400 even without a provider', async () => {
    const response = await post(restricted.url, SMS, smsSend({ body: '' }))
    expectError(response, 400, 'validation_failed')
  })

  it('still routes the family that has a provider', async () => {
    const response = await post(restricted.url, EMAIL, emailSend())
    expect(response.status).toBe(202)
  })
})

describe('408 request_timeout', () => {
  it('answers 408 and closes the connection when the body stops arriving', async () => {
    const connection = await openConnection(restricted.url)
    const started = performance.now()
    await connection.write(
      `POST ${EMAIL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\nX-Request-Id: slow-client-1\r\n\r\n{"from": "a`,
    )
    const response = await connection.response(5000)
    const waited = performance.now() - started
    expectError(response, 408, 'request_timeout')
    expect(response.body.request_id).toBe('slow-client-1')
    expect(response.headers.connection).toBe('close')
    expect(waited).toBeGreaterThanOrEqual(400)
    expect(waited).toBeLessThan(4000)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(connection.ended).toBe(true)
    connection.close()
  })
})

describe('pagination', () => {
  const LISTS = ['/api/conversations', '/api/conversations/1/messages']

  type Detail = { field: string; message: string }
  const BAD_PAGE: Detail = {
    field: 'page',
    message: 'must be a positive integer up to 1000000000',
  }
  const BAD_PAGE_SIZE: Detail = {
    field: 'pageSize',
    message: 'must be a positive integer',
  }

  // Every list route, the dead letters included: each bad value gets the
  // same message and detail, whatever made it bad (range or spelling).
  it.each<[string, Detail[]]>([
    ...[
      '0',
      '-1',
      '%2B1',
      '1.5',
      'abc',
      '1e3',
      '%2010',
      '0x10',
      '1000000001',
      '99999999999999999999',
    ].map((value): [string, Detail[]] => [`page=${value}`, [BAD_PAGE]]),
    ...['-1', '%2B5', '2.5', 'abc', '1e3', '%2010', '-0'].map(
      (value): [string, Detail[]] => [`pageSize=${value}`, [BAD_PAGE_SIZE]],
    ),
    ['page=-1&pageSize=-1', [BAD_PAGE, BAD_PAGE_SIZE]],
    ['page=0&pageSize=abc', [BAD_PAGE, BAD_PAGE_SIZE]],
    ['pageSize=x&page=1.5', [BAD_PAGE, BAD_PAGE_SIZE]],
  ])('refuses %s with 400 and the same details', async (query, details) => {
    for (const list of [...LISTS, '/api/dead-letters?queue=dispatch']) {
      const separator = list.includes('?') ? '&' : '?'
      const response = await get(server.url, `${list}${separator}${query}`)
      expectError(response, 400, 'validation_failed')
      expect(response.body.message, list).toBe(
        `request failed validation: ${details.map((d) => d.field).join(', ')}`,
      )
      expect(response.body.details, list).toEqual(details)
    }
  })

  it('reads an empty page or pageSize as the default, and clamps a huge pageSize', async () => {
    for (const list of LISTS) {
      const empty = await get(server.url, `${list}?page=&pageSize=`)
      expect(empty.status, empty.text).toBe(200)
      expect(empty.body.meta).toMatchObject({ page: 1, page_size: 50 })
      const huge = await get(
        server.url,
        `${list}?pageSize=99999999999999999999`,
      )
      expect(huge.status, huge.text).toBe(200)
      expect(huge.body.meta).toMatchObject({ page: 1, page_size: 200 })
    }
  })

  it('clamps pageSize=1000 to 200, reads 0 as the default 50, and pages past the end empty', async () => {
    for (const list of LISTS) {
      const clamped = await get(server.url, `${list}?pageSize=1000`)
      expect(clamped.status).toBe(200)
      expect(clamped.body.meta).toMatchObject({ page: 1, page_size: 200 })
      const zero = await get(server.url, `${list}?pageSize=0`)
      expect(zero.body.meta).toMatchObject({ page: 1, page_size: 50 })
      const past = await get(server.url, `${list}?page=999&pageSize=10`)
      expect(past.status).toBe(200)
      expect(past.body.items).toEqual([])
      expect(past.body.meta.total).toBeGreaterThan(0)
    }
  })

  it('pages through conversations without overlap', async () => {
    for (let i = 0; i < 3; i += 1) {
      const response = await post(
        server.url,
        SMS,
        smsSend({ to: `+1202555020${i}` }),
      )
      expect(response.status).toBe(202)
    }
    const all = (await get(server.url, '/api/conversations?pageSize=200')).body
    const pages = []
    for (let page = 1; page <= all.meta.total; page += 1) {
      const response = await get(
        server.url,
        `/api/conversations?page=${page}&pageSize=1`,
      )
      expect(response.body.meta).toEqual({
        page,
        page_size: 1,
        total: all.meta.total,
      })
      pages.push(...response.body.items)
    }
    expect(pages).toEqual(all.items)
  })
})

describe('headers and request ids', () => {
  it('echoes a valid X-Request-Id on success and in error bodies', async () => {
    const ok = await get(server.url, '/healthz', {
      'x-request-id': 'req-123_ABC.x',
    })
    expect(ok.headers.get('x-request-id')).toBe('req-123_ABC.x')
    const longest = 'r'.repeat(128)
    const echoed = await get(server.url, '/nope', { 'x-request-id': longest })
    expect(echoed.headers.get('x-request-id')).toBe(longest)
    expect(echoed.body.request_id).toBe(longest)
  })

  it.each([
    ['200 characters', 'x'.repeat(200)],
    ['129 characters', 'x'.repeat(129)],
    ['a space', 'has space'],
    ['a non-ASCII character', 'caf\u00e9'],
  ])('replaces an X-Request-Id with %s by a fresh one', async (_, id) => {
    const response = await rawRequest(server.url, '/nope', {
      headers: { 'x-request-id': id },
    })
    const given = response.headers['x-request-id']
    expect(given).not.toBe(id)
    expect(given).toMatch(/^[\x21-\x7e]{1,128}$/)
    expect(response.body.request_id).toBe(given)
  })

  it('gives every request its own id', async () => {
    const ids = await Promise.all(
      Array.from({ length: 5 }, async () =>
        (await get(server.url, '/healthz')).headers.get('x-request-id'),
      ),
    )
    expect(new Set(ids).size).toBe(5)
  })

  it('answers HEAD wherever GET answers, with the headers and no body', async () => {
    for (const path of [
      '/healthz',
      '/readyz',
      '/metrics',
      '/api/conversations',
      '/api/conversations?page=1&pageSize=1',
      '/api/conversations/1/messages',
      '/api/messages/1',
      '/api/messages/999',
      '/api/conversations?page=0',
      '/nope',
    ]) {
      const getResponse = await get(server.url, path)
      const head = await rawRequest(server.url, path, { method: 'HEAD' })
      expect(head.status, path).toBe(getResponse.status)
      expect(head.text, path).toBe('')
      expect(head.headers['content-type']).toMatch(/^application\/json/)
      expectCommonHeaders(head.headers)
    }
  })

  it('sends JSON and the security headers on every kind of answer', async () => {
    const answers = await Promise.all([
      get(server.url, '/healthz'),
      get(server.url, '/readyz'),
      get(server.url, '/metrics'),
      get(server.url, '/api/conversations'),
      post(server.url, SMS, smsSend()),
      post(
        server.url,
        SMS_HOOK,
        smsWebhook({ messaging_provider_id: 'SM-hdr' }),
      ),
      post(server.url, SMS, '{'),
      get(server.url, '/nope'),
    ])
    for (const answer of answers) {
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/)
      expectCommonHeaders(answer.headers)
    }
  })
})

describe('configuration errors', () => {
  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['API_MAX_BODY_BYTES', '-5'],
    ['API_BODY_TIMEOUT_MS', '1.5'],
    ['LOG_LEVEL', 'chatty'],
    ['API_SMS_PROVIDERS', 'carrier-pigeon'],
    ['API_SQLITE_SYNCHRONOUS', 'OFF'],
    ['DATABASE_URL', 'mysql://127.0.0.1/parley'],
    ['API_DEFAULT_REGION', 'ZZ'],
    ['API_WORKER_CLAIM_TIMEOUT_SECS', '5'],
  ])('exits non-zero naming %s when it is %s', async (name, value) => {
    const child = launchServer({ env: { [name]: value } })
    const code = await child.waitForExit(10_000)
    expect(code, child.describeOutput()).not.toBe(0)
    expect(code).not.toBeNull()
    expect(child.stderr).toContain(name)
    expect(
      child.logLines().some((line) => line.event === 'server.listening'),
    ).toBe(false)
  })

  it('exits non-zero naming DATABASE_URL when the file is not a database', async () => {
    const file = join(makeTempDir(), 'not-a-database.db')
    writeFileSync(file, 'this is a text file, not SQLite\n'.repeat(100))
    const child = launchServer({ env: { DATABASE_URL: file } })
    expect(await child.waitForExit(10_000)).not.toBe(0)
    expect(child.stderr).toContain('DATABASE_URL')
  })
})

// Until no inbound event waits or runs and the metrics have counted every
// stored message's threading. A worker marks its batch done in the database
// before its commit is durable and only then counts it, so an idle queue
// alone does not mean the counters have stopped moving.
async function waitUntilSettled(target: ServerProcess): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const stored = readDatabase(target.databasePath, (db) => ({
      queue: queueStates(db, 'inbound_events'),
      conversations: (
        db.prepare('select count(*) as n from conversations').get() as {
          n: number
        }
      ).n,
      messages: (
        db.prepare('select count(*) as n from messages').get() as { n: number }
      ).n,
    }))
    const metrics = await readMetrics(target.url)
    const threaded =
      metrics.conversations_created + metrics.conversations_reused
    if (
      !stored.queue.pending &&
      !stored.queue.running &&
      metrics.conversations_created === stored.conversations &&
      threaded === stored.messages
    ) {
      return
    }
    if (Date.now() > deadline) {
      throw new Error(
        `not settled: ${JSON.stringify({ stored, threaded, created: metrics.conversations_created })}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
