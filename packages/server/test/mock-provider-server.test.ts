import type { LogFields, Logger } from '@parley/core'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  type MockProviderServer,
  startMockProviderServer,
} from '../src/mock-provider/mock-provider-server.js'
import type { RequestLogSnapshot } from '../src/mock-provider/request-log.js'
import {
  MOCK_PROVIDER_CREDENTIALS,
  type MockProviderServerOptions,
} from '../src/mock-provider/server-options.js'

const { accountSid, authToken, apiKey } = MOCK_PROVIDER_CREDENTIALS
const TWILIO_PATH = `/2010-04-01/Accounts/${accountSid}/Messages.json`
const BASIC = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`
const FORM =
  'To=%2B12025550100&From=%2B18045551234&Body=hi&MediaUrl=a&MediaUrl=b'
const MAIL = {
  personalizations: [{ to: [{ email: 'bob@example.com' }] }],
  from: { email: 'ann@example.com' },
  subject: 'Hi',
  content: [{ type: 'text/html', value: '<p>Hi</p>' }],
}

let mock: MockProviderServer

afterEach(() => mock?.close())

async function start(options: MockProviderServerOptions = {}) {
  mock = await startMockProviderServer(options)
  return mock
}

interface CallOptions {
  headers?: Record<string, string>
  body?: string
  method?: string
  signal?: AbortSignal
}

/** A Twilio call with the right credentials unless `headers` say else. */
function twilio(options: CallOptions = {}) {
  return fetch(`${mock.url}${TWILIO_PATH}`, {
    method: options.method ?? 'POST',
    headers: {
      authorization: BASIC,
      'content-type': 'application/x-www-form-urlencoded',
      ...options.headers,
    },
    body: options.method === 'GET' ? null : (options.body ?? FORM),
    signal: options.signal ?? null,
  })
}

/** A SendGrid call with the right key unless `headers` say else. */
function sendgrid(options: CallOptions = {}) {
  return fetch(`${mock.url}/v3/mail/send`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      ...options.headers,
    },
    body: options.body ?? JSON.stringify(MAIL),
  })
}

function control(path: string, init: RequestInit = {}) {
  return fetch(`${mock.url}/__mock/${path}`, init)
}

const ids = (messageId: string, attempt: number) => ({
  'x-parley-message-id': messageId,
  'x-parley-attempt': String(attempt),
})

describe('the Twilio API of the mock provider server', () => {
  it('answers 201 with a queued message and a fresh SM sid', async () => {
    await start()

    const response = await twilio()

    expect(response.status).toBe(201)
    expect(await response.json()).toMatchObject({
      sid: expect.stringMatching(/^SM[0-9a-f]{32}$/),
      account_sid: accountSid,
      to: '+12025550100',
      from: '+18045551234',
      body: 'hi',
      status: 'queued',
      num_media: '2',
    })
  })

  it('answers 401 in Twilio style to wrong credentials', async () => {
    await start()
    const wrong = Buffer.from(`${accountSid}:nope`).toString('base64')

    const response = await twilio({
      headers: { authorization: `Basic ${wrong}` },
    })

    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({
      code: 20003,
      message: 'Authenticate',
      more_info: 'https://www.twilio.com/docs/errors/20003',
      status: 401,
    })
  })

  it('answers 404 to another account, 405 to GET', async () => {
    await start()

    const other = await fetch(
      `${mock.url}/2010-04-01/Accounts/ACother/Messages.json`,
      { method: 'POST', headers: { authorization: BASIC }, body: FORM },
    )
    const get = await twilio({ method: 'GET' })

    expect(other.status).toBe(404)
    expect(get.status).toBe(405)
    expect(get.headers.get('allow')).toBe('POST')
  })

  it('answers 400 with Twilio codes to an incomplete form', async () => {
    await start()

    const noTo = await twilio({ body: 'From=%2B1&Body=hi' })
    const noBody = await twilio({ body: 'To=%2B1&From=%2B2' })

    expect(await noTo.json()).toMatchObject({ code: 21604, status: 400 })
    expect(await noBody.json()).toMatchObject({ code: 21602, status: 400 })
  })
})

describe('the SendGrid API of the mock provider server', () => {
  it('answers 202 with an X-Message-Id and no body', async () => {
    await start()

    const response = await sendgrid()

    expect(response.status).toBe(202)
    expect(response.headers.get('x-message-id')).toMatch(/^[\w-]{20,}$/)
    expect(await response.text()).toBe('')
  })

  it('answers 401 in SendGrid style to a wrong key', async () => {
    await start()

    const response = await sendgrid({ headers: { authorization: 'Bearer x' } })

    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({
      errors: [
        {
          message:
            'The provided authorization grant is invalid, expired, or revoked',
          field: null,
          help: null,
        },
      ],
    })
  })

  it('answers 400 naming the field SendGrid requires', async () => {
    await start()

    const response = await sendgrid({
      body: JSON.stringify({ ...MAIL, subject: '' }),
    })

    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({
      errors: [{ field: 'subject' }],
    })
  })
})

describe('forced statuses', () => {
  it.each([400, 401, 500, 503])('answers %i to every call', async (status) => {
    await start({ forceStatus: status })

    const sms = await twilio({ headers: { authorization: 'none' } })
    const mail = await sendgrid()

    expect([sms.status, mail.status]).toEqual([status, status])
    expect(await sms.json()).toMatchObject({ status })
    expect(await mail.json()).toMatchObject({ errors: [{ help: null }] })
  })

  it('sends Retry-After with a forced 429', async () => {
    await start({ forceStatus: 429, retryAfterSecs: 9 })

    const response = await twilio()

    expect(response.status).toBe(429)
    expect(response.headers.get('retry-after')).toBe('9')
  })

  it('can force one family only', async () => {
    await start({ sms: { forceStatus: 503 } })

    expect((await twilio()).status).toBe(503)
    expect((await sendgrid()).status).toBe(202)
  })
})

describe('slow answers and held requests', () => {
  it('delays every answer by slowMs', async () => {
    await start({ slowMs: 150 })
    const started = performance.now()

    const response = await sendgrid()

    expect(response.status).toBe(202)
    expect(performance.now() - started).toBeGreaterThanOrEqual(140)
  })

  it('holds a timed-out call until the client goes away', async () => {
    await start({ timeoutPct: 100 })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 150)

    const answer = twilio({ signal: controller.signal })

    await expect(answer).rejects.toThrow(/abort/i)
    expect(mock.requests()).toMatchObject([
      { outcome: 'timeout', status: null },
    ])
  })

  it('drops a held call after hangMs', async () => {
    await start({ timeoutPct: 100, hangMs: 30 })

    await expect(twilio()).rejects.toThrow(/fetch failed/)
  })

  it('drops held calls when it closes', async () => {
    await start({ timeoutPct: 100 })

    const answer = twilio()
    await vi.waitFor(() => expect(mock.requests()).toHaveLength(1))
    await mock.close()

    await expect(answer).rejects.toThrow(/fetch failed/)
  })
})

describe('request recording', () => {
  it('records method, path, headers, raw and parsed bodies and the outcome', async () => {
    await start()

    await twilio({ headers: ids('17', 2) })
    await sendgrid({ headers: ids('18', 1) })

    expect(mock.requests()).toMatchObject([
      {
        seq: 1,
        method: 'POST',
        path: TWILIO_PATH,
        headers: { authorization: BASIC, 'x-parley-attempt': '2' },
        body: FORM,
        form: { To: ['+12025550100'], MediaUrl: ['a', 'b'] },
        json: null,
        family: 'sms',
        messageId: '17',
        attempt: 2,
        outcome: 'sent',
        status: 201,
      },
      {
        seq: 2,
        path: '/v3/mail/send',
        form: null,
        json: MAIL,
        family: 'email',
        messageId: '18',
        outcome: 'sent',
        status: 202,
      },
    ])
  })

  it('counts calls that repeat a (message id, attempt)', async () => {
    await start()

    await twilio({ headers: ids('5', 1) })
    await twilio({ headers: ids('5', 1) })
    await twilio({ headers: ids('5', 1) })
    await twilio({ headers: ids('5', 2) })
    await sendgrid({ headers: ids('5', 1) })
    await twilio()
    await twilio()

    const listed = (await (
      await control('requests')
    ).json()) as RequestLogSnapshot
    expect(mock.duplicates()).toBe(2)
    expect(listed).toMatchObject({ duplicates: 2, dropped: 0 })
    expect(listed.requests).toHaveLength(7)
  })

  it('rolls calls without Parley headers on a counter', async () => {
    await start({ seed: 3, errorPct: 50 })

    for (let i = 0; i < 4; i += 1) await twilio()

    expect(mock.requests().map((r) => [r.messageId, r.attempt])).toEqual([
      ['anonymous-1', 1],
      ['anonymous-2', 1],
      ['anonymous-3', 1],
      ['anonymous-4', 1],
    ])
  })

  it('clears the record with DELETE /__mock/requests', async () => {
    await start()
    await twilio({ headers: ids('1', 1) })
    await twilio({ headers: ids('1', 1) })

    const cleared = await control('requests', { method: 'DELETE' })

    expect(cleared.status).toBe(204)
    expect(mock.requests()).toEqual([])
    expect(mock.duplicates()).toBe(0)
  })

  it('keeps the last maxRecordedRequests requests', async () => {
    await start({ maxRecordedRequests: 2 })

    for (let i = 0; i < 3; i += 1) await sendgrid()

    const listed = (await (
      await control('requests')
    ).json()) as RequestLogSnapshot
    expect(listed.requests.map((r) => r.seq)).toEqual([2, 3])
    expect(listed.dropped).toBe(1)
  })

  it('answers 413 to a body above maxBodyBytes', async () => {
    await start({ maxBodyBytes: 100 })

    const response = await sendgrid({
      body: JSON.stringify({ x: 'y'.repeat(200) }),
    })

    expect(response.status).toBe(413)
    expect(mock.requests()).toMatchObject([{ outcome: 'too_large' }])
  })
})

describe('the control API', () => {
  it('shows each family in snake_case', async () => {
    await start({ seed: 11, errorPct: 20, email: { slowMs: 5 } })

    const response = await control('config')

    expect(await response.json()).toEqual({
      sms: {
        seed: 11,
        timeout_pct: 0,
        error_pct: 20,
        ratelimit_pct: 0,
        retry_after_secs: 1,
        hang_ms: null,
        slow_ms: 0,
        force_status: null,
      },
      email: {
        seed: 11,
        timeout_pct: 0,
        error_pct: 20,
        ratelimit_pct: 0,
        retry_after_secs: 1,
        hang_ms: null,
        slow_ms: 5,
        force_status: null,
      },
    })
  })

  it('changes shared and per-family settings with PUT', async () => {
    await start({ seed: 1 })

    const response = await control('config', {
      method: 'PUT',
      body: JSON.stringify({
        force_status: 500,
        email: { force_status: null },
      }),
    })

    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({
      sms: { force_status: 500 },
      email: { force_status: null },
    })
    expect(mock.config.sms.forceStatus).toBe(500)
    expect((await twilio()).status).toBe(500)
  })

  it('refuses invalid settings with 400, changing nothing', async () => {
    await start({ seed: 1 })

    const response = await control('config', {
      method: 'PUT',
      body: JSON.stringify({ error_pct: 80, sms: { timeout_pct: 30 } }),
    })
    const typo = await control('config', {
      method: 'PUT',
      body: JSON.stringify({ errorPct: 10, slow_ms: '5' }),
    })

    expect(response.status).toBe(400)
    expect(await response.json()).toEqual({
      code: 'validation_failed',
      message: 'the mock provider settings are invalid',
      details: [
        {
          field: 'sms',
          message: 'the percentages must add up to at most 100 (received 110)',
        },
      ],
    })
    expect(await typo.json()).toMatchObject({
      details: [
        { field: 'errorPct', message: 'is not a setting' },
        { field: 'slow_ms', message: 'must be a number' },
      ],
    })
    expect(mock.config.sms.errorPct).toBe(0)
  })

  it('answers 405 and 404 where nothing is served', async () => {
    await start()

    const post = await control('requests', { method: 'POST' })
    const unknown = await control('nothing')
    const stray = await fetch(`${mock.url}/v2/other`, { method: 'POST' })

    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, DELETE')
    expect(unknown.status).toBe(404)
    expect(stray.status).toBe(404)
  })
})

describe('startMockProviderServer', () => {
  it('listens on 127.0.0.1 by default and logs through the given logger', async () => {
    const events: [string, LogFields | undefined][] = []
    const record = (event: string, fields?: LogFields) => {
      events.push([event, fields])
    }
    const logger: Logger = {
      debug: record,
      info: record,
      warn: record,
      error: record,
    }

    await start({ logger, seed: 8 })
    await twilio({ headers: ids('9', 1) })

    expect(mock.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(events.map(([event]) => event)).toEqual([
      'mock_provider.listening',
      'mock_provider.call',
    ])
    expect(events[1]?.[1]).toEqual({
      family: 'sms',
      message_id: '9',
      attempt: 1,
      outcome: 'sent',
      status: 201,
    })
  })

  it('configure() throws a RangeError naming the field, changing nothing', async () => {
    await start()

    expect(() => mock.configure({ sms: { errorPct: 101 } })).toThrow(
      'mock provider settings: sms.errorPct must be a whole number from 0 to 100 (received 101)',
    )
    expect(mock.config.sms.errorPct).toBe(0)
  })

  it.each([
    [
      { port: 70_000 },
      RangeError,
      /^port must be a whole number from 0 to 65535/,
    ],
    [{ accountSid: 'AC:1' }, RangeError, /^accountSid must not contain/],
    [{ apiKey: '' }, TypeError, /^apiKey must be a non-empty string/],
    [
      { timeoutPct: 60, errorPct: 60 },
      RangeError,
      /percentages must add up to at most 100/,
    ],
    [
      { hangMs: -1 },
      RangeError,
      /hangMs must be a whole number from 0 to 3600000, or null/,
    ],
    [
      { forceStatus: 99 },
      RangeError,
      /forceStatus must be a whole number from 200 to 599/,
    ],
  ])('refuses %j', async (options, type, message) => {
    const started = startMockProviderServer(
      options as MockProviderServerOptions,
    )

    await expect(started).rejects.toThrow(type)
    await expect(started).rejects.toThrow(message)
  })
})

describe('the mock provider server with hostile form fields', () => {
  it.each(['__proto__', 'constructor', 'hasOwnProperty'])(
    'records a form field named %s as a plain field',
    async (name) => {
      const server = await startMockProviderServer({ port: 0 })
      try {
        const answer = await fetch(
          `${server.url}/2010-04-01/Accounts/ACmock/Messages.json`,
          {
            method: 'POST',
            headers: {
              'Content-Type': 'application/x-www-form-urlencoded',
              Authorization: `Basic ${Buffer.from('ACmock:mock-auth-token').toString('base64')}`,
            },
            body: `${name}=x&To=%2B12025550123&From=%2B18045551234&Body=hi`,
          },
        )
        expect(answer.status).toBeLessThan(500)
        const [recorded] = server.requests()
        expect(recorded?.form?.[name]).toEqual(['x'])
      } finally {
        await server.close()
      }
    },
  )
})
