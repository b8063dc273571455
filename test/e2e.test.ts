/**
 * The first "Must show", against the real server process: sends
 * and webhooks over HTTP, threading into conversations, and metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post, request } from './helpers/http.js'
import {
  allMessages,
  type ConversationItem,
  emailSend,
  emailWebhook,
  expectCommonHeaders,
  METRIC_FIELDS,
  type MessageItem,
  readDatabase,
  readMetrics,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const PARLEY_PHONE = '+18045551234'
const CUSTOMER_PHONE = '+12025550123'
const PARLEY_EMAIL = 'Parley Support <support@parley.example>'
const CUSTOMER_EMAIL = 'ann.lee@customer.example'
const HTML = '<p>&amp; "quotes" é 😀</p>'

const MMS_OUT_ATTACHMENTS = [
  'https://cdn.parley.example/caf%C3%A9.png?size=large&v=2',
  'http://cdn.parley.example/clip.mp4#t=3',
]
const MMS_IN_ATTACHMENTS = ['https://media.carrier.example/reply.gif']

describe('the end-to-end sequence over HTTP', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess()
  })

  it('threads an SMS, an MMS, an email and their three replies into two conversations, with metrics to match', async () => {
    const sends = [
      () =>
        post(server.url, '/api/messages/sms', {
          from: PARLEY_PHONE,
          to: CUSTOMER_PHONE,
          type: 'sms',
          body: 'Your table for two is booked for 7 pm.',
          attachments: null,
          timestamp: '2024-11-01T14:00:00Z',
        }),
      () =>
        post(server.url, '/api/messages/sms', {
          from: PARLEY_PHONE,
          to: '(202) 555-0123',
          type: 'mms',
          body: 'Here is the menu.',
          attachments: MMS_OUT_ATTACHMENTS,
          timestamp: '2024-11-01T14:02:00.250Z',
        }),
      () =>
        post(server.url, '/api/messages/email', {
          from: PARLEY_EMAIL,
          to: CUSTOMER_EMAIL,
          subject: 'Your booking',
          body: HTML,
          attachments: [],
          timestamp: '2024-11-01T15:04:00+01:00',
        }),
    ]
    // One after the other, so that ids follow the order of the issue:
    // requests that arrive together share a commit in lock order instead.
    const sent = []
    for (const send of sends) sent.push(await send())
    for (const response of sent) {
      expect(response.status, response.text).toBe(202)
      expectCommonHeaders(response.headers)
    }
    expect(sent.map((response) => response.body)).toEqual([
      { status: 'accepted', id: '1', conversation_id: '1' },
      { status: 'accepted', id: '2', conversation_id: '1' },
      { status: 'accepted', id: '3', conversation_id: '2' },
    ])

    const webhooks = [
      post(server.url, '/api/webhooks/sms', {
        from: CUSTOMER_PHONE,
        to: PARLEY_PHONE,
        type: 'sms',
        body: 'Thanks! See you then.',
        attachments: [],
        timestamp: '2024-11-01T10:01:00-04:00',
        messaging_provider_id: 'SM-reply-1',
      }),
      post(server.url, '/api/webhooks/sms', {
        from: '+1 202-555-0123',
        to: '804.555.1234',
        type: 'mms',
        body: '',
        attachments: MMS_IN_ATTACHMENTS,
        timestamp: '2024-11-01T14:03:00+00:00',
        messaging_provider_id: 'MM-reply-2',
      }),
      post(server.url, '/api/webhooks/email', {
        from: 'Ann Lee <Ann.Lee+bookings@Customer.example>',
        to: 'support@parley.example',
        subject: 'Re: Your booking',
        body: '<div>Lovely, thank you!<br></div>',
        attachments: null,
        timestamp: '2024-11-01T14:05:00Z',
        xillio_id: 'xl-reply-3',
      }),
    ]
    const received = []
    for (const webhook of webhooks) received.push(await webhook)
    const lastAccepted = performance.now()
    for (const response of received) {
      expect(response.status, response.text).toBe(202)
      expect(response.body).toEqual({ status: 'accepted' })
    }

    const { value: conversations } = await pollUntil(
      async () => {
        const response = await get(server.url, '/api/conversations')
        const items = response.body.items as ConversationItem[]
        const counts = items.map((item) => item.message_count)
        return items.length === 2 && counts.join() === '2,4' && response
      },
      { timeoutMs: 20_000, intervalMs: 20, description: 'threading' },
    )
    const threadingMs = performance.now() - lastAccepted
    console.log(
      `e2e: the three webhooks were threaded ${threadingMs.toFixed(0)} ms after the last 202`,
    )

    expect(conversations.status).toBe(200)
    expect(conversations.body.meta).toEqual({
      page: 1,
      page_size: 50,
      total: 2,
    })
    // Newest activity first: the email pair (14:05Z) before the phones.
    expect(conversations.body.items).toEqual([
      {
        id: '2',
        key: 'email:ann.lee@customer.example<->support@parley.example',
        channel: 'email',
        participant_a: 'ann.lee@customer.example',
        participant_b: 'support@parley.example',
        message_count: 2,
        last_activity_at: '2024-11-01T14:05:00.000Z',
      },
      {
        id: '1',
        key: 'sms:+12025550123<->+18045551234',
        channel: 'sms',
        participant_a: '+12025550123',
        participant_b: '+18045551234',
        message_count: 4,
        last_activity_at: '2024-11-01T14:03:00.000Z',
      },
    ])

    // Dispatch runs beside threading: wait until the three sends are sent.
    // The inbound worker counts an event once its commit is durable, which
    // can be a moment after the conversation reads back: wait for those
    // counters too.
    const { value: metrics } = await pollUntil(
      async () => {
        const snapshot = await readMetrics(server.url)
        const settled =
          snapshot.dispatch_success === 3 && snapshot.worker_processed === 3
        return settled && snapshot
      },
      { description: 'three dispatches and three threaded replies counted' },
    )

    const messages = await get(server.url, '/api/conversations/1/messages')
    expect(messages.status).toBe(200)
    expect(messages.body.meta).toEqual({ page: 1, page_size: 50, total: 4 })
    const items = messages.body.items as MessageItem[]
    expect(items.map((item) => item.timestamp)).toEqual([
      '2024-11-01T14:00:00.000Z',
      '2024-11-01T14:01:00.000Z',
      '2024-11-01T14:02:00.250Z',
      '2024-11-01T14:03:00.000Z',
    ])
    expect(items).toMatchObject([
      {
        id: '1',
        conversation_id: '1',
        direction: 'outbound',
        channel: 'sms',
        from: PARLEY_PHONE,
        to: CUSTOMER_PHONE,
        body: 'Your table for two is booked for 7 pm.',
        snippet: 'Your table for two is booked for 7 pm.',
        attachments: [],
        status: 'sent',
      },
      {
        conversation_id: '1',
        direction: 'inbound',
        channel: 'sms',
        from: CUSTOMER_PHONE,
        to: PARLEY_PHONE,
        body: 'Thanks! See you then.',
        attachments: [],
        status: 'received',
      },
      {
        id: '2',
        conversation_id: '1',
        direction: 'outbound',
        channel: 'mms',
        from: PARLEY_PHONE,
        to: '(202) 555-0123',
        body: 'Here is the menu.',
        attachments: MMS_OUT_ATTACHMENTS,
        status: 'sent',
      },
      {
        conversation_id: '1',
        direction: 'inbound',
        channel: 'mms',
        from: '+1 202-555-0123',
        to: '804.555.1234',
        body: '',
        attachments: MMS_IN_ATTACHMENTS,
        status: 'received',
      },
    ])
    for (const item of items) {
      expect(Object.keys(item)).toEqual(
        expect.arrayContaining([
          'id',
          'conversation_id',
          'direction',
          'channel',
          'from',
          'to',
          'body',
          'snippet',
          'attachments',
          'timestamp',
          'status',
        ]),
      )
    }

    const emails = await allMessages(server.url, '2')
    expect(emails).toMatchObject([
      {
        id: '3',
        direction: 'outbound',
        from: PARLEY_EMAIL,
        to: CUSTOMER_EMAIL,
        body: HTML,
        timestamp: '2024-11-01T14:04:00.000Z',
        status: 'sent',
      },
      {
        direction: 'inbound',
        from: 'Ann Lee <Ann.Lee+bookings@Customer.example>',
        body: '<div>Lovely, thank you!<br></div>',
        status: 'received',
      },
    ])

    expect(Object.keys(metrics).sort()).toEqual([...METRIC_FIELDS].sort())
    for (const field of METRIC_FIELDS) {
      expect(Number.isSafeInteger(metrics[field]), field).toBe(true)
      expect(metrics[field], field).toBeGreaterThanOrEqual(0)
    }
    expect(metrics).toMatchObject({
      worker_processed: 3,
      worker_claimed: 3,
      worker_error: 0,
      conversations_created: 2,
      conversations_reused: 4,
      conversations_failures: 0,
      dispatch_attempts: 3,
      dispatch_success: 3,
      provider_sms_mms_success: 2,
      provider_email_success: 1,
      invalid_routing: 0,
    })
    expect(Math.abs(metrics.ts_unix_ms - Date.now())).toBeLessThan(60_000)

    const detail = await get(server.url, '/api/messages/3')
    expect(detail.status).toBe(200)
    expect(detail.body).toMatchObject({
      id: '3',
      status: 'sent',
      attempts: 1,
      last_error: null,
      next_attempt_at: null,
      provider: 'mock-email',
    })
    expect(detail.body.provider_message_id).toEqual(expect.any(String))
  })
})

describe('the server process, beyond the sequence', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess()
  })

  // Waits until the inbound queue is empty and every claim was settled.
  async function inboundSettled(): Promise<void> {
    await pollUntil(
      () =>
        readDatabase(server.databasePath, (db) => {
          const row = db
            .prepare(
              "select count(*) as n from inbound_events where state <> 'done'",
            )
            .get() as { n: number }
          return row.n === 0
        }),
      { description: 'inbound queue drained' },
    )
  }

  function messagesWithBody(body: string): number {
    return readDatabase(server.databasePath, (db) => {
      const row = db
        .prepare('select count(*) as n from messages where body = ?')
        .get(body) as { n: number }
      return row.n
    })
  }

  it('returns an HTML email body byte for byte, outbound and inbound', async () => {
    const html = `  <p>&amp; "quotes" é 😀</p>\r\n<a href='x'>\tlink</a>\u2028<!-- c --> `
    const sent = await post(
      server.url,
      '/api/messages/email',
      emailSend({ body: html, subject: 'Ünïcode “subject” 😀' }),
    )
    expect(sent.status).toBe(202)
    const detail = await get(server.url, `/api/messages/${sent.body.id}`)
    expect(detail.body.body).toBe(html)
    expect(Buffer.from(detail.body.body, 'utf8')).toEqual(
      Buffer.from(html, 'utf8'),
    )
    expect(detail.body.subject).toBe('Ünïcode “subject” 😀')
    expect(detail.body.snippet).toBe(`& "quotes" é 😀 link`)

    const inboundHtml = `<p>${HTML}</p>\n`
    const received = await post(
      server.url,
      '/api/webhooks/email',
      emailWebhook({ body: inboundHtml, xillio_id: 'xl-html' }),
    )
    expect(received.status).toBe(202)
    const { value: message } = await pollUntil(async () => {
      const items = await allMessages(server.url, sent.body.conversation_id)
      return items.find((item) => item.direction === 'inbound')
    })
    expect(message.body).toBe(inboundHtml)
  })

  it('answers a repeated webhook 202 with duplicate: true and stores its message once', async () => {
    const payload = smsWebhook({
      messaging_provider_id: 'SM-repeat',
      body: 'sent twice by the carrier',
    })
    const first = await post(server.url, '/api/webhooks/sms', payload)
    expect(first.status).toBe(202)
    expect(first.body).toEqual({ status: 'accepted' })
    await inboundSettled()

    const again = await post(server.url, '/api/webhooks/sms', {
      ...payload,
      body: 'a redelivery may differ; the provider id decides',
    })
    expect(again.status).toBe(202)
    expect(again.body).toEqual({ status: 'accepted', duplicate: true })

    // Redeliveries racing each other: one is new, the rest are duplicates.
    const racing = await Promise.all(
      Array.from({ length: 5 }, () =>
        post(
          server.url,
          '/api/webhooks/sms',
          smsWebhook({
            messaging_provider_id: 'SM-race',
            body: 'raced five times',
          }),
        ),
      ),
    )
    expect(racing.map((response) => response.status)).toEqual(
      Array(5).fill(202),
    )
    const duplicates = racing.filter((response) => response.body.duplicate)
    expect(duplicates).toHaveLength(4)

    await inboundSettled()
    expect(messagesWithBody('sent twice by the carrier')).toBe(1)
    expect(
      messagesWithBody('a redelivery may differ; the provider id decides'),
    ).toBe(0)
    expect(messagesWithBody('raced five times')).toBe(1)
  })

  it('keeps SMS and email provider ids apart', async () => {
    const sms = await post(
      server.url,
      '/api/webhooks/sms',
      smsWebhook({ messaging_provider_id: 'shared-id', body: 'sms one' }),
    )
    const email = await post(
      server.url,
      '/api/webhooks/email',
      emailWebhook({ xillio_id: 'shared-id', body: 'email one' }),
    )
    expect(sms.body).toEqual({ status: 'accepted' })
    expect(email.body).toEqual({ status: 'accepted' })
  })

  it("accepts Twilio's form-encoded inbound SMS and MMS", async () => {
    const before = Date.now()
    const form = new URLSearchParams({
      From: '+12025550199',
      To: '+18045551234',
      Body: 'Sent from Twilio & friends: é 😀',
      MessageSid: 'SM0123456789abcdef0123456789abcdef',
      NumMedia: '2',
      MediaUrl0: 'https://api.twilio.example/media/ME1',
      MediaUrl1: 'https://api.twilio.example/media/ME2',
      AccountSid: 'AC-ignored',
    })
    const response = await post(
      server.url,
      '/api/webhooks/sms',
      form.toString(),
      { 'content-type': 'application/x-www-form-urlencoded' },
    )
    expect(response.status, response.text).toBe(202)
    expect(response.body).toEqual({ status: 'accepted' })

    const plain = await post(
      server.url,
      '/api/webhooks/sms',
      new URLSearchParams({
        From: '+12025550199',
        To: '+18045551234',
        Body: 'plain text',
        MessageSid: 'SM-plain',
        NumMedia: '0',
      }).toString(),
      { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
    )
    expect(plain.status, plain.text).toBe(202)
    const after = Date.now()

    const repeat = await post(
      server.url,
      '/api/webhooks/sms',
      form.toString(),
      {
        'content-type': 'application/x-www-form-urlencoded',
      },
    )
    expect(repeat.body).toEqual({ status: 'accepted', duplicate: true })

    await inboundSettled()
    const conversations = await get(server.url, '/api/conversations')
    const conversation = (conversations.body.items as ConversationItem[]).find(
      (item) => item.key === 'sms:+12025550199<->+18045551234',
    )
    expect(conversation?.message_count).toBe(2)
    const items = await allMessages(server.url, conversation?.id ?? '')
    const mms = items.find((item) => item.channel === 'mms')
    expect(mms).toMatchObject({
      direction: 'inbound',
      from: '+12025550199',
      to: '+18045551234',
      body: 'Sent from Twilio & friends: é 😀',
      attachments: [
        'https://api.twilio.example/media/ME1',
        'https://api.twilio.example/media/ME2',
      ],
      status: 'received',
    })
    // Twilio sends no timestamp: the arrival time stands in for it.
    const at = Date.parse(mms?.timestamp ?? '')
    expect(at).toBeGreaterThanOrEqual(before - 1000)
    expect(at).toBeLessThanOrEqual(after + 1000)
    expect(items.find((item) => item.channel === 'sms')?.body).toBe(
      'plain text',
    )
    const detail = await get(server.url, `/api/messages/${mms?.id}`)
    expect(detail.body.provider_message_id).toBe(
      'SM0123456789abcdef0123456789abcdef',
    )
  })
})

describe('npm start', () => {
  it('serves with every default but PORT and DATABASE_URL, then stops on SIGTERM with 0', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: { HOST: undefined, LOG_LEVEL: undefined },
    })
    const health = await get(server.url, '/healthz')
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'ok' })
    const ready = await get(server.url, '/readyz')
    expect(ready.status).toBe(200)

    const sent = await post(server.url, '/api/messages/sms', smsSend(), {
      'x-request-id': 'defaults-send-1',
    })
    expect(sent.status).toBe(202)
    const { value: detail } = await pollUntil(async () => {
      const response = await get(server.url, `/api/messages/${sent.body.id}`)
      return response.body.status === 'sent' && response.body
    })
    expect(detail).toMatchObject({ provider: 'mock-sms', attempts: 1 })
    const heads = await request(server.url, '/metrics', { method: 'HEAD' })
    expect(heads.status).toBe(200)
    expect(heads.text).toBe('')

    expect(await server.stop()).toBe(0)
    const lines = server.logLines()
    const warning = lines.find((line) => line.event === 'providers.mock_only')
    expect(warning?.level).toBe('warn')
    expect(String(warning?.message)).toMatch(/NOTHING IS REALLY DELIVERED/)
    const logged = lines.find(
      (line) =>
        line.event === 'http.request' && line.request_id === 'defaults-send-1',
    )
    expect(logged).toMatchObject({
      method: 'POST',
      path: '/api/messages/sms',
      status: 202,
    })
    expect(logged?.duration_ms).toEqual(expect.any(Number))
    const requestLines = lines.filter((line) => line.event === 'http.request')
    expect(requestLines.length).toBeGreaterThanOrEqual(5)
    expect(lines.at(-1)).toMatchObject({
      event: 'server.shutdown_finished',
      exit_code: 0,
    })
    expect(server.stderr).toBe('')
  })
})
