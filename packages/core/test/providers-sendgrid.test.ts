import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Provider } from '../src/providers/provider.js'
import {
  addressOf,
  attachmentFilename,
  createSendGridProvider,
  type SendGridProviderOptions,
} from '../src/providers/sendgrid-provider.js'
import {
  attemptNo,
  email,
  file,
  type MockProviderServer,
  redirect,
  startMockProviderServer,
  startTestServer,
  status,
  type TestServer,
} from './providers-support.js'

const KEY = 'SG.secret-key-99'
const PNG = Buffer.from([
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255,
])

let mock: MockProviderServer
let files: TestServer
let sendgrid: Provider

/** A SendGrid adapter aimed at the mock server, with `overrides`. */
function adapter(overrides: Partial<SendGridProviderOptions> = {}): Provider {
  return createSendGridProvider({
    baseUrl: mock.url,
    apiKey: KEY,
    allowPrivateAttachmentHosts: true,
    ...overrides,
  })
}

function onlyRequest() {
  const requests = mock.requests()
  expect(requests).toHaveLength(1)
  return requests[0]!
}

beforeAll(async () => {
  mock = await startMockProviderServer({ apiKey: KEY })
  files = await startTestServer({
    '/media/cat%20photo.png': file(PNG, {
      'content-type': 'image/png; charset=binary',
    }),
    '/report': file('%PDF-1.7', { 'content-type': 'application/pdf' }),
    '/untyped.bin': file('raw'),
    '/moved/old.txt': redirect('/media/cat%20photo.png'),
    '/big.bin': file(Buffer.alloc(600)),
    '/missing.png': status(404),
    '/flaky.png': status(502),
  })
  sendgrid = adapter()
})

afterAll(async () => {
  await mock.close()
  await files.close()
})

beforeEach(() => {
  mock.reset()
  files.hits.length = 0
  mock.configure({
    timeoutPct: 0,
    errorPct: 0,
    rateLimitPct: 0,
    forceStatus: null,
    hangMs: null,
  })
})

describe('SendGrid adapter: the request', () => {
  it('posts the mail as JSON to /v3/mail/send with the bearer key', async () => {
    const outcome = await sendgrid.send(email(), attemptNo(2))

    const request = onlyRequest()
    expect(outcome).toEqual({
      kind: 'sent',
      providerMessageId: expect.stringMatching(/^[\w-]{20,}$/),
    })
    expect(request.method).toBe('POST')
    expect(request.path).toBe('/v3/mail/send')
    expect(request.headers.authorization).toBe(`Bearer ${KEY}`)
    expect(request.headers['content-type']).toMatch(/^application\/json/)
    expect(request.headers['x-parley-message-id']).toBe('42')
    expect(request.headers['x-parley-attempt']).toBe('2')
    expect(request.json).toEqual({
      personalizations: [{ to: [{ email: 'bob@example.com' }] }],
      from: { email: 'ann@example.com', name: 'Ann Lee' },
      subject: 'Hi',
      content: [{ type: 'text/html', value: '<p>Hello</p>' }],
    })
  })

  it('keeps the HTML body byte for byte', async () => {
    const body = '<p style="a:b">\u00e9t\u00e9 \u{1f600}</p>\r\n\t&amp; <br/>'

    await sendgrid.send(email({ body }), attemptNo())

    const json = onlyRequest().json as { content: { value: string }[] }
    expect(json.content[0]?.value).toBe(body)
  })

  it('uses the default subject when the message has none', async () => {
    const withDefault = adapter({ defaultSubject: 'A note from Parley' })

    await withDefault.send(email({ subject: null }), attemptNo())
    await withDefault.send(email({ subject: '  ' }), attemptNo())

    const subjects = mock
      .requests()
      .map((r) => (r.json as { subject: string }).subject)
    expect(subjects).toEqual(['A note from Parley', 'A note from Parley'])
  })

  it('fails permanently without any subject, sending nothing', async () => {
    const outcome = await sendgrid.send(email({ subject: null }), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error: 'subject required: set SENDGRID_DEFAULT_SUBJECT',
    })
    expect(mock.requests()).toEqual([])
  })

  it('fetches attachments and sends them as base64 content', async () => {
    const attachments = [
      `${files.url}/media/cat%20photo.png`,
      `${files.url}/report?id=7`,
      `${files.url}/untyped.bin`,
    ]

    const outcome = await sendgrid.send(email({ attachments }), attemptNo())

    expect(outcome.kind).toBe('sent')
    expect(
      (onlyRequest().json as { attachments: unknown }).attachments,
    ).toEqual([
      {
        content: PNG.toString('base64'),
        filename: 'cat photo.png',
        type: 'image/png',
        disposition: 'attachment',
      },
      {
        content: Buffer.from('%PDF-1.7').toString('base64'),
        filename: 'report',
        type: 'application/pdf',
        disposition: 'attachment',
      },
      {
        content: Buffer.from('raw').toString('base64'),
        filename: 'untyped.bin',
        type: 'application/octet-stream',
        disposition: 'attachment',
      },
    ])
  })

  it('follows an attachment redirect, keeping the given name', async () => {
    await sendgrid.send(
      email({ attachments: [`${files.url}/moved/old.txt`] }),
      attemptNo(),
    )

    const json = onlyRequest().json as { attachments: { filename: string }[] }
    expect(json.attachments[0]?.filename).toBe('old.txt')
    expect(files.hits).toEqual(['/moved/old.txt', '/media/cat%20photo.png'])
  })
})

describe('SendGrid adapter: attachments that cannot be sent', () => {
  it('refuses loopback attachment hosts unless allowed', async () => {
    const strict = adapter({ allowPrivateAttachmentHosts: false })

    const outcome = await strict.send(
      email({ attachments: [`${files.url}/report`] }),
      attemptNo(),
    )

    expect(outcome).toMatchObject({
      kind: 'permanent',
      error: expect.stringContaining('has the loopback address 127.0.0.1'),
    })
    expect(files.hits).toEqual([])
    expect(mock.requests()).toEqual([])
  })

  it('numbers the attachment that failed', async () => {
    const attachments = [`${files.url}/report`, `${files.url}/missing.png`]

    const outcome = await sendgrid.send(email({ attachments }), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error: `attachment 2 of 2, ${files.url}/missing.png: the host answered HTTP 404`,
    })
    expect(mock.requests()).toEqual([])
  })

  it('makes a failing attachment host transient', async () => {
    const outcome = await sendgrid.send(
      email({ attachments: [`${files.url}/flaky.png`] }),
      attemptNo(),
    )

    expect(outcome).toMatchObject({ kind: 'transient' })
  })

  it('caps the bytes of all attachments together', async () => {
    const small = adapter({ attachmentMaxBytes: 1000 })
    const one = [`${files.url}/big.bin`]
    const two = [`${files.url}/big.bin`, `${files.url}/big.bin?again`]

    const fits = await small.send(email({ attachments: one }), attemptNo())
    const tooMuch = await small.send(email({ attachments: two }), attemptNo())

    expect(fits.kind).toBe('sent')
    expect(tooMuch).toEqual({
      kind: 'permanent',
      error: `attachment 2 of 2, ${files.url}/big.bin: larger than the 400-byte limit`,
    })
  })
})

describe('SendGrid adapter: the answers', () => {
  it('makes a 400 permanent, naming the status, message and field', async () => {
    mock.configure({ forceStatus: 400 })

    const outcome = await sendgrid.send(email(), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error:
        'sendgrid answered HTTP 400: The from email does not contain a ' +
        'valid address. (from.email)',
    })
  })

  it('makes a 401 permanent without showing the key', async () => {
    const outcome = await adapter({ apiKey: 'SG.wrong' }).send(
      email(),
      attemptNo(),
    )

    expect(outcome).toEqual({
      kind: 'permanent',
      error:
        'sendgrid answered HTTP 401: The provided authorization grant is ' +
        'invalid, expired, or revoked',
    })
    expect(JSON.stringify(outcome)).not.toContain('SG.wrong')
  })

  it('makes a 429 rate limited with Retry-After', async () => {
    mock.configure({ forceStatus: 429, retryAfterSecs: 3 })

    const outcome = await sendgrid.send(email(), attemptNo())

    expect(outcome).toEqual({
      kind: 'rate_limited',
      retryAfterMs: 3000,
      error: 'sendgrid answered HTTP 429: too many requests',
    })
  })

  it.each([500, 503])('makes a %i transient', async (status) => {
    mock.configure({ forceStatus: status })

    const outcome = await sendgrid.send(email(), attemptNo())

    expect(outcome).toMatchObject({
      kind: 'transient',
      error: expect.stringMatching(`^sendgrid answered HTTP ${status}: `),
    })
  })

  it('gives up a hung call when the signal aborts (transient)', async () => {
    mock.configure({ timeoutPct: 100 })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)

    const outcome = await sendgrid.send(
      email(),
      attemptNo(1, controller.signal),
    )

    expect(outcome).toEqual({ kind: 'transient', error: 'aborted' })
  })

  it('makes a 202 without X-Message-Id transient', async () => {
    const noId: typeof fetch = async () => new Response(null, { status: 202 })

    const outcome = await adapter({ fetch: noId }).send(email(), attemptNo())

    expect(outcome).toEqual({
      kind: 'transient',
      error: 'sendgrid answered HTTP 202 without X-Message-Id',
    })
  })
})

describe('addressOf', () => {
  it.each([
    ['bob@example.com', { email: 'bob@example.com' }],
    [' bob@example.com ', { email: 'bob@example.com' }],
    [
      'Ann Lee <ann@example.com>',
      { email: 'ann@example.com', name: 'Ann Lee' },
    ],
    [
      '"Lee, Ann" <ann@example.com>',
      { email: 'ann@example.com', name: 'Lee, Ann' },
    ],
    [
      '"Ann \\"A\\" Lee" <a@example.com>',
      { email: 'a@example.com', name: 'Ann "A" Lee' },
    ],
    ['<ann@example.com>', { email: 'ann@example.com' }],
  ])('reads %j', (text, address) => {
    expect(addressOf(text)).toEqual(address)
  })
})

describe('attachmentFilename', () => {
  it.each([
    ['https://x.example/a/b/photo.jpg?v=2', 'photo.jpg'],
    ['https://x.example/a/my%20file.pdf', 'my file.pdf'],
    ['https://x.example/a/..%2F..%2Fetc%2Fpasswd', '_.._etc_passwd'],
    ['https://x.example/.hidden', 'hidden'],
    ['https://x.example/a%00b%0A.txt', 'a_b_.txt'],
    ['https://x.example/bad%E0%A4%A.txt', 'bad%E0%A4%A.txt'],
    ['https://x.example/', 'attachment'],
    ['https://x.example/dir/', 'attachment'],
  ])('names %s %j', (url, name) => {
    expect(attachmentFilename(url)).toBe(name)
  })

  it('keeps the extension of a long name within 100 characters', () => {
    const name = attachmentFilename(
      `https://x.example/${'n'.repeat(300)}.tar.gz`,
    )

    expect(name).toHaveLength(100)
    expect(name.endsWith('.gz')).toBe(true)
  })

  it('falls back to the redirected URL', () => {
    expect(
      attachmentFilename(
        'https://x.example/',
        new URL('https://y.example/f.csv'),
      ),
    ).toBe('f.csv')
  })
})

describe('createSendGridProvider', () => {
  it('has the email family and a default name', () => {
    expect(createSendGridProvider({ apiKey: KEY })).toMatchObject({
      name: 'sendgrid',
      family: 'email',
    })
  })

  it.each([
    [{ apiKey: undefined }, TypeError, /^apiKey must be a non-empty string/],
    [{ apiKey: '' }, RangeError, /^apiKey .*received a blank string/],
    [{ defaultSubject: '' }, RangeError, /^defaultSubject must be a non-empty/],
    [
      { attachmentMaxBytes: 0 },
      RangeError,
      /^attachmentMaxBytes must be a whole number of at least 1 \(received 0\)/,
    ],
    [
      { attachmentTimeoutMs: 1.5 },
      RangeError,
      /^attachmentTimeoutMs .*received 1.5/,
    ],
    [
      { attachmentTimeoutMs: '10' },
      TypeError,
      /^attachmentTimeoutMs must be a number/,
    ],
    [
      { allowPrivateAttachmentHosts: 'yes' },
      TypeError,
      /^allowPrivateAttachmentHosts must be a boolean/,
    ],
    [
      { baseUrl: 'api.sendgrid.com' },
      RangeError,
      /^baseUrl must be an absolute URL/,
    ],
  ])('refuses %j', (override, type, message) => {
    const options = { apiKey: KEY, ...override } as SendGridProviderOptions

    expect(() => createSendGridProvider(options)).toThrow(type)
    expect(() => createSendGridProvider(options)).toThrow(message)
  })
})
