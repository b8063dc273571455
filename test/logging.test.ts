/**
 * Logs operators can search without leaking (issue 9): JSON lines with
 * time, level, event and request id; no API key, signature, webhook secret
 * or message body anywhere, at any level; phone numbers and email
 * addresses only on debug lines; and one message followed by its id from
 * the request that accepted it to `sent`.
 */
import { randomBytes } from 'node:crypto'
import {
  generateSendGridKeyPair,
  signSendGridRequest,
  signStandardWebhook,
  signTwilioRequest,
} from '@parley/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, type JsonResponse, post } from './helpers/http.js'
import { emailSend, emailWebhook, smsSend } from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const token = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`

/** Values that must appear in no log line, at any level. */
const SECRET = {
  apiKey: token('key-'),
  wrongKey: token('wrong-'),
  smsToken: token('twilio-'),
  emailSecret: `whsec_${randomBytes(24).toString('base64')}`,
}
const BODY = {
  sms: token('SMSBODY'),
  email: token('EMAILBODY'),
  smsWebhook: token('INBODY'),
  emailWebhook: token('INMAIL'),
  invalidJson: token('BADJSON'),
  invalidField: token('BADFIELD'),
  oversized: token('HUGE'),
}
/** Personal data: allowed on debug lines only. */
const ADDRESS = {
  smsFrom: '+12025550177',
  smsTo: '+18045550188',
  webhookFrom: '+13125550166',
  emailFrom: 'ann.logscan@example.com',
  emailTo: 'bob.logscan@example.net',
}
const SENDGRID = generateSendGridKeyPair()
const PUBLIC_URL = 'https://hooks.parley.test'
const FORM = 'application/x-www-form-urlencoded'

interface Run {
  readonly lines: Record<string, unknown>[]
  /** Everything the process wrote, stdout and stderr. */
  readonly output: string
  /** Signature header values sent (secrets too). */
  readonly signatures: string[]
  /** The first SMS send's answer, for the trail test. */
  readonly followed: JsonResponse
}

const auth = { authorization: `Bearer ${SECRET.apiKey}` }

async function exercise(
  server: ServerProcess,
): Promise<Omit<Run, 'lines' | 'output'>> {
  const signatures: string[] = []
  const sms = smsSend({
    from: ADDRESS.smsFrom,
    to: ADDRESS.smsTo,
    body: BODY.sms,
  })
  const followed = await post(server.url, '/api/messages/sms', sms, auth)
  expect(followed.status, followed.text).toBe(202)
  const email = emailSend({
    from: `Ann <${ADDRESS.emailFrom}>`,
    to: ADDRESS.emailTo,
    body: `<p>${BODY.email}</p>`,
  })
  expect(
    (await post(server.url, '/api/messages/email', email, auth)).status,
  ).toBe(202)

  // A path of 8 KB, which anyone may send: its line stays short.
  expect(
    (await get(server.url, `/api/messages/${'b'.repeat(8000)}`)).status,
  ).toBe(401)

  // Refused and malformed requests carry the same kinds of data.
  const refused = await Promise.all([
    post(server.url, '/api/messages/sms', sms, {
      authorization: `Bearer ${SECRET.wrongKey}`,
    }),
    post(
      server.url,
      '/api/messages/sms',
      `{"from":"${ADDRESS.smsFrom}","body":"${BODY.invalidJson}",`,
      auth,
    ),
    post(
      server.url,
      '/api/messages/sms',
      smsSend({ from: ADDRESS.smsFrom, to: 'nobody', body: BODY.invalidField }),
      auth,
    ),
    post(
      server.url,
      '/api/messages/sms',
      smsSend({ from: ADDRESS.smsFrom, body: BODY.oversized.repeat(200) }),
      auth,
    ),
  ])
  expect(refused.map((response) => response.status)).toEqual([
    401, 400, 400, 413,
  ])

  const form = new URLSearchParams({
    MessageSid: 'SM-logscan-1',
    From: ADDRESS.webhookFrom,
    To: ADDRESS.smsTo,
    Body: BODY.smsWebhook,
    NumMedia: '0',
  }).toString()
  const signed = signTwilioRequest({
    authToken: SECRET.smsToken,
    url: `${PUBLIC_URL}/api/webhooks/sms`,
    contentType: FORM,
    rawBody: Buffer.from(form),
  })
  signatures.push(signed.signature)
  const forged = randomBytes(20).toString('base64')
  signatures.push(forged)
  const webhooks = [
    await post(server.url, '/api/webhooks/sms', form, {
      'content-type': FORM,
      'X-Twilio-Signature': signed.signature,
    }),
    await post(server.url, '/api/webhooks/sms', form, {
      'content-type': FORM,
      'X-Twilio-Signature': forged,
    }),
  ]
  const emailHook = JSON.stringify(
    emailWebhook({
      from: ADDRESS.emailFrom,
      to: ADDRESS.emailTo,
      body: BODY.emailWebhook,
      xillio_id: 'X-logscan-1',
    }),
  )
  const emailHeaders = signStandardWebhook({
    secret: SECRET.emailSecret,
    rawBody: emailHook,
  })
  signatures.push(...Object.values(emailHeaders))
  webhooks.push(
    await post(server.url, '/api/webhooks/email', emailHook, emailHeaders),
  )
  const events = JSON.stringify([
    {
      email: ADDRESS.emailTo,
      event: 'delivered',
      sg_event_id: 'evt-logscan',
      sg_message_id: 'sg-logscan.filter0001.1.0',
      timestamp: 1_730_469_600,
    },
  ])
  const eventHeaders = signSendGridRequest({
    privateKey: SENDGRID.privateKey,
    rawBody: events,
  })
  signatures.push(eventHeaders['x-twilio-email-event-webhook-signature'])
  webhooks.push(
    await post(server.url, '/api/webhooks/email/events', events, eventHeaders),
  )
  expect(webhooks.map((response) => response.status)).toEqual([
    202, 401, 202, 200,
  ])

  await pollUntil(
    () => {
      const lines = server.logLines()
      const count = (event: string) =>
        lines.filter((line) => line.event === event).length
      return count('dispatch.sent') >= 2 && count('inbound.processed') >= 2
    },
    {
      timeoutMs: 15_000,
      description: 'both sends sent, both webhooks threaded',
    },
  )
  // A read of the followed message, through the API with the key.
  const read = await get(server.url, `/api/messages/${followed.body.id}`, auth)
  expect(read.body.body).toBe(BODY.sms)
  return { signatures, followed }
}

async function runAt(level: 'info' | 'debug'): Promise<Run> {
  const server = await startServerProcess({
    env: {
      LOG_LEVEL: level,
      API_KEYS: SECRET.apiKey,
      WEBHOOK_SMS_AUTH_TOKEN: SECRET.smsToken,
      WEBHOOK_EMAIL_SECRET: SECRET.emailSecret,
      WEBHOOK_SENDGRID_PUBLIC_KEY: SENDGRID.publicKey,
      API_PUBLIC_URL: PUBLIC_URL,
      API_MAX_BODY_BYTES: '4096',
      API_WORKER_POLL_MS: '50',
    },
  })
  const exercised = await exercise(server)
  expect(await server.stop()).toBe(0)
  return {
    ...exercised,
    lines: server.logLines(),
    output: `${server.stdout}\n${server.stderr}`,
  }
}

function expectAbsent(output: string, values: readonly string[]): void {
  for (const value of values) {
    expect(output.includes(value), `the logs contain ${value}`).toBe(false)
  }
}

const PHONE_DIGITS = [ADDRESS.smsFrom, ADDRESS.smsTo, ADDRESS.webhookFrom].map(
  (phone) => phone.slice(2),
)
const EMAIL_PARTS = [ADDRESS.emailFrom, ADDRESS.emailTo].map(
  (email) => email.split('@')[0] ?? email,
)

describe.each(['info', 'debug'] as const)('logs at LOG_LEVEL=%s', (level) => {
  let run: Run

  beforeAll(async () => {
    run = await runAt(level)
  }, 60_000)

  it('are JSON lines with time, level and event, and request lines carry their request id', () => {
    const text = run.output.split('\n').filter((line) => line.trim() !== '')
    expect(text.length).toBeGreaterThan(20)
    for (const line of text) {
      // A full pipe takes lines of up to 4 KiB whole (see the log sink).
      expect(Buffer.byteLength(line)).toBeLessThan(4096)
      const parsed = JSON.parse(line) as Record<string, unknown>
      expect(parsed.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      expect(['debug', 'info', 'warn', 'error']).toContain(parsed.level)
      expect(parsed.event).toMatch(/^[a-z_]+\.[a-z_]+$/)
    }
    const perRequest = run.lines.filter((line) =>
      ['http.request', 'message.accepted', 'inbound.accepted'].includes(
        String(line.event),
      ),
    )
    expect(perRequest.length).toBeGreaterThan(10)
    for (const line of perRequest) expect(line.request_id).toBeTypeOf('string')
    if (level === 'info') {
      expect(run.lines.some((line) => line.level === 'debug')).toBe(false)
    }
  })

  it('never contain an API key, a signature, a webhook secret or a message body', () => {
    expectAbsent(run.output, [
      ...Object.values(SECRET),
      ...run.signatures,
      ...Object.values(BODY),
    ])
    expect(run.output).not.toMatch(
      /authorization|x-twilio-signature|webhook-signature|BEGIN PUBLIC KEY/i,
    )
    // The body's length is what is logged instead.
    const accepted = run.lines.find(
      (line) =>
        line.event === 'message.accepted' &&
        line.message_id === run.followed.body.id,
    )
    expect(accepted?.body_length).toBe(BODY.sms.length)
  })

  if (level === 'info') {
    it('carry no phone number or email address', () => {
      expectAbsent(run.output, [...PHONE_DIGITS, ...EMAIL_PARTS])
    })
  } else {
    it('carry phone numbers and email addresses on debug lines only', () => {
      const personal = [...PHONE_DIGITS, ...EMAIL_PARTS]
      const carrying = run.lines.filter((line) =>
        personal.some((value) => JSON.stringify(line).includes(value)),
      )
      // The scan would see them: the debug lines do carry them.
      expect(carrying.length).toBeGreaterThanOrEqual(4)
      for (const line of carrying)
        expect(line.level, JSON.stringify(line)).toBe('debug')
    })
  }

  it('follow one message by its id from the request that accepted it to sent', () => {
    const id = run.followed.body.id as string
    const requestId = run.followed.headers.get('x-request-id')
    const trail = run.lines
      .map((line, index): Record<string, unknown> & { index: number } => ({
        ...line,
        index,
      }))
      .filter(
        (line) =>
          line.message_id === id ||
          (line.request_id === requestId && line.event === 'http.request'),
      )
    const at = (event: string) => {
      const line = trail.find((item) => item.event === event)
      expect(line, `${event} for message ${id}`).toBeDefined()
      return line as (typeof trail)[number]
    }
    const accepted = at('message.accepted')
    const answered = at('http.request')
    const claimed = at('dispatch.claimed')
    const sent = at('dispatch.sent')

    expect(accepted.request_id).toBe(requestId)
    expect(answered).toMatchObject({ status: 202, path: '/api/messages/sms' })
    expect(claimed).toMatchObject({ attempts: 0 })
    expect(sent).toMatchObject({ attempts: 1, provider: 'mock-sms' })
    expect(accepted.index).toBeLessThan(claimed.index)
    expect(claimed.index).toBeLessThan(sent.index)
    expect(String(accepted.time) <= String(sent.time)).toBe(true)
  })
})
