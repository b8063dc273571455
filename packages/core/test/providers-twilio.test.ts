import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Provider } from '../src/providers/provider.js'
import {
  createTwilioProvider,
  type TwilioProviderOptions,
} from '../src/providers/twilio-provider.js'
import {
  attemptNo,
  type MockProviderServer,
  redirect,
  sms,
  startMockProviderServer,
  startTestServer,
  status,
} from './providers-support.js'

const SID = 'AC0123456789abcdef0123456789abcdef'
const TOKEN = 'tw-secret-token-42'

let mock: MockProviderServer
let twilio: Provider

/** A Twilio adapter aimed at the mock server, with `overrides`. */
function adapter(overrides: Partial<TwilioProviderOptions> = {}): Provider {
  return createTwilioProvider({
    baseUrl: mock.url,
    accountSid: SID,
    authToken: TOKEN,
    ...overrides,
  })
}

function onlyRequest() {
  const requests = mock.requests()
  expect(requests).toHaveLength(1)
  return requests[0]!
}

beforeAll(async () => {
  mock = await startMockProviderServer({ accountSid: SID, authToken: TOKEN })
  twilio = adapter()
})

afterAll(() => mock.close())

beforeEach(() => {
  mock.reset()
  mock.configure({
    timeoutPct: 0,
    errorPct: 0,
    rateLimitPct: 0,
    forceStatus: null,
    hangMs: null,
    retryAfterSecs: 1,
  })
})

describe('Twilio adapter: the request', () => {
  it('posts the form to the account Messages.json with basic auth', async () => {
    const outcome = await twilio.send(sms(), attemptNo(3))

    const request = onlyRequest()
    expect(outcome).toEqual({
      kind: 'sent',
      providerMessageId: expect.stringMatching(/^SM[0-9a-f]{32}$/),
    })
    expect(request.method).toBe('POST')
    expect(request.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`)
    expect(request.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
    )
    expect(request.headers['content-type']).toMatch(
      /^application\/x-www-form-urlencoded/,
    )
    expect(request.headers['x-parley-message-id']).toBe('41')
    expect(request.headers['x-parley-attempt']).toBe('3')
    expect(request.outcome).toBe('sent')
  })

  it('encodes the + of phone numbers as %2B', async () => {
    await twilio.send(sms(), attemptNo())

    const { body, form } = onlyRequest()
    expect(body).toBe('To=%2B12025550100&From=%2B18045551234&Body=Hello+there')
    expect(form).toEqual({
      To: ['+12025550100'],
      From: ['+18045551234'],
      Body: ['Hello there'],
    })
  })

  it('sends one MediaUrl field per attachment, in order', async () => {
    const attachments = [
      'https://cdn.example.com/a.jpg?x=1&y=2',
      'https://cdn.example.com/b.gif',
    ]

    await twilio.send(sms({ channel: 'mms', attachments }), attemptNo())

    const { body, form } = onlyRequest()
    expect(form?.MediaUrl).toEqual(attachments)
    expect(body).toContain(
      'MediaUrl=https%3A%2F%2Fcdn.example.com%2Fa.jpg%3Fx%3D1%26y%3D2' +
        '&MediaUrl=https%3A%2F%2Fcdn.example.com%2Fb.gif',
    )
  })

  it('keeps the body exactly, whatever characters it holds', async () => {
    const body = 'a+b=c & d%20 \u00e9\u{1f600}\r\nnew line'

    await twilio.send(sms({ body }), attemptNo())

    expect(onlyRequest().form?.Body).toEqual([body])
  })

  it('adds StatusCallback when configured', async () => {
    const callback = 'https://parley.example.com/api/webhooks/sms/status'

    await adapter({ statusCallbackUrl: callback }).send(sms(), attemptNo())

    expect(onlyRequest().form?.StatusCallback).toEqual([callback])
  })

  it('accepts a base URL with a trailing slash', async () => {
    await adapter({ baseUrl: `${mock.url}/` }).send(sms(), attemptNo())

    expect(onlyRequest().path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`)
  })
})

describe('Twilio adapter: the answers', () => {
  it('makes a 400 permanent, naming the status and Twilio code', async () => {
    mock.configure({ forceStatus: 400 })

    const outcome = await twilio.send(sms(), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error:
        "twilio answered HTTP 400: error 21211: The 'To' number is not a " +
        'valid phone number.',
    })
  })

  it('reports a request Twilio finds invalid with its code', async () => {
    const outcome = await twilio.send(sms({ to: '' }), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error:
        "twilio answered HTTP 400: error 21604: A 'To' phone number is " +
        'required.',
    })
  })

  it('makes a 401 permanent without showing the token', async () => {
    const wrong = adapter({ authToken: 'not-the-token' })

    const outcome = await wrong.send(sms(), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error: 'twilio answered HTTP 401: error 20003: Authenticate',
    })
    expect(JSON.stringify(outcome)).not.toContain('not-the-token')
  })

  it('makes a 429 rate limited with Retry-After in seconds', async () => {
    mock.configure({ forceStatus: 429, retryAfterSecs: 7 })

    const outcome = await twilio.send(sms(), attemptNo())

    expect(outcome).toEqual({
      kind: 'rate_limited',
      retryAfterMs: 7000,
      error: 'twilio answered HTTP 429: error 20429: Too Many Requests',
    })
  })

  it('makes a 429 rate limited with Retry-After as an HTTP date', async () => {
    mock.configure({ rateLimitPct: 100 })
    const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString()
    const withDate: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init)
      const headers = new Headers(answer.headers)
      headers.set('retry-after', inTwoMinutes)
      return new Response(answer.body, { status: answer.status, headers })
    }

    const outcome = await adapter({ fetch: withDate }).send(sms(), attemptNo())

    expect(outcome.kind).toBe('rate_limited')
    const wait = outcome.kind === 'rate_limited' ? outcome.retryAfterMs : 0
    expect(wait).toBeGreaterThan(118_000)
    expect(wait).toBeLessThanOrEqual(120_000)
  })

  it.each([500, 503])('makes a forced %i transient', async (status) => {
    mock.configure({ forceStatus: status })

    const outcome = await twilio.send(sms(), attemptNo())

    expect(outcome).toMatchObject({
      kind: 'transient',
      error: expect.stringMatching(`^twilio answered HTTP ${status}: error 20`),
    })
  })

  it('meets 500 and 503 on alternate attempts of a failing schedule', async () => {
    mock.configure({ errorPct: 100 })

    const first = await twilio.send(sms(), attemptNo(1))
    const second = await twilio.send(sms(), attemptNo(2))

    expect(first).toMatchObject({ kind: 'transient' })
    expect(second).toMatchObject({ kind: 'transient' })
    expect(mock.requests().map((request) => request.status)).toEqual([500, 503])
  })

  it('gives up a hung call when the signal aborts (transient)', async () => {
    mock.configure({ timeoutPct: 100 })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)

    const outcome = await twilio.send(sms(), attemptNo(1, controller.signal))

    expect(outcome).toEqual({ kind: 'transient', error: 'aborted' })
    expect(onlyRequest()).toMatchObject({ outcome: 'timeout', status: null })
  })

  it('treats a connection dropped without an answer as transient', async () => {
    mock.configure({ timeoutPct: 100, hangMs: 20 })

    const outcome = await twilio.send(sms(), attemptNo())

    expect(outcome).toMatchObject({
      kind: 'transient',
      error: expect.stringMatching(/^network error: /),
    })
  })

  it('treats a refused connection as transient', async () => {
    const closed = await startMockProviderServer()
    await closed.close()

    const outcome = await adapter({ baseUrl: closed.url }).send(
      sms(),
      attemptNo(),
    )

    expect(outcome).toEqual({
      kind: 'transient',
      error: 'network error: ECONNREFUSED',
    })
  })

  it('makes a 2xx without a sid transient', async () => {
    const noSid: typeof fetch = async () =>
      new Response('{"status":"queued"}', { status: 201 })

    const outcome = await adapter({ fetch: noSid }).send(sms(), attemptNo())

    expect(outcome).toEqual({
      kind: 'transient',
      error: 'twilio answered HTTP 201 without a message sid',
    })
  })

  it('does not follow a redirect with its credentials', async () => {
    const moved: typeof fetch = async () =>
      new Response(null, {
        status: 301,
        headers: { location: 'https://elsewhere.example/' },
      })

    const outcome = await adapter({ fetch: moved }).send(sms(), attemptNo())

    expect(outcome).toEqual({
      kind: 'permanent',
      error:
        'twilio answered HTTP 301 (redirects are not followed: check the ' +
        'base URL)',
    })
  })

  it('makes exactly one request, even to a redirecting server', async () => {
    const elsewhere = await startTestServer({
      [`/2010-04-01/Accounts/${SID}/Messages.json`]: redirect('/other', 307),
      '/other': status(201),
    })

    const outcome = await adapter({ baseUrl: elsewhere.url }).send(
      sms(),
      attemptNo(),
    )
    await elsewhere.close()

    expect(outcome.kind).toBe('permanent')
    expect(elsewhere.hits).toEqual([
      `/2010-04-01/Accounts/${SID}/Messages.json`,
    ])
  })

  it('never puts the auth token into an error, even when echoed', async () => {
    const echo: typeof fetch = async () =>
      Response.json(
        { code: 20003, message: `bad token ${TOKEN}` },
        { status: 401 },
      )

    const outcome = await adapter({ fetch: echo }).send(sms(), attemptNo())

    expect(JSON.stringify(outcome)).not.toContain(TOKEN)
    expect(outcome).toMatchObject({
      error: expect.stringContaining('[redacted]'),
    })
  })
})

describe('createTwilioProvider', () => {
  const valid = { accountSid: SID, authToken: TOKEN }

  it('has the sms family and a default name', () => {
    const provider = createTwilioProvider(valid)

    expect(provider).toMatchObject({ name: 'twilio', family: 'sms' })
    expect(createTwilioProvider({ ...valid, name: 'tw-2' }).name).toBe('tw-2')
  })

  it.each([
    [
      { accountSid: undefined },
      TypeError,
      /^accountSid must be a non-empty string/,
    ],
    [{ accountSid: 'AC:1' }, RangeError, /^accountSid must not contain ':'/],
    [
      { authToken: 12 },
      TypeError,
      /^authToken must be a non-empty string \(received number\)/,
    ],
    [{ authToken: ' ' }, RangeError, /^authToken .*received a blank string/],
    [
      { baseUrl: 'ftp://x.example' },
      RangeError,
      /^baseUrl must be an http\(s\) URL/,
    ],
    [
      { baseUrl: 'http://x.example/?a=1' },
      RangeError,
      /^baseUrl must not carry/,
    ],
    [
      { baseUrl: 'http://:secret@x.example/' },
      RangeError,
      /^baseUrl must not carry a query, fragment or credentials \(received http:\/\/x\.example\/…\)$/,
    ],
    [{ name: '' }, RangeError, /^name must be a non-empty string/],
    [
      { statusCallbackUrl: 'nope' },
      RangeError,
      /^statusCallbackUrl must be an absolute URL/,
    ],
    [{ fetch: 'fetch' }, TypeError, /^fetch must be a function/],
  ])('refuses %j', (override, type, message) => {
    const options = { ...valid, ...override } as TwilioProviderOptions

    expect(() => createTwilioProvider(options)).toThrow(type)
    expect(() => createTwilioProvider(options)).toThrow(message)
  })
})
