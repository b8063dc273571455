/**
 * Provider status callbacks against the real server process: Twilio-style
 * reports (form-encoded as Twilio posts them, or JSON) and SendGrid-style
 * event arrays move sent messages to delivered, undelivered, bounced or
 * failed; never backwards, idempotently, and a report that arrives before
 * the send stored the provider's id is applied when it is. The mock
 * providers answer `mock-<family>-<message id>-<attempt>`; without faults
 * every message is sent at its first attempt.
 *
 * The tests of this file share one server and run in order, so that the
 * next message id is known before the message is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post } from './helpers/http.js'
import {
  detailFields,
  emailSend,
  expectCommonHeaders,
  expectError,
  smsSend,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** The answer of a status callback with the given counts. */
const counts = (fields: Partial<Record<string, number>>) => ({
  status: 'ok',
  applied: 0,
  unchanged: 0,
  pending: 0,
  ignored: 0,
  ...fields,
})

describe('status callbacks over HTTP', () => {
  let server: ServerProcess
  let lastId = 0

  beforeAll(async () => {
    server = await startServerProcess({
      env: { API_PROVIDER_SEED: '7', API_WORKER_POLL_MS: '10' },
    })
  })

  async function status(id: string): Promise<string> {
    const response = await get(server.url, `/api/messages/${id}`)
    expect(response.status, response.text).toBe(200)
    return response.body.status as string
  }

  /** Sends a message and waits until the provider took it. */
  async function sendAndWait(family: 'sms' | 'email'): Promise<string> {
    const response =
      family === 'sms'
        ? await post(server.url, '/api/messages/sms', smsSend())
        : await post(server.url, '/api/messages/email', emailSend())
    expect(response.status, response.text).toBe(202)
    const id = response.body.id as string
    lastId = Number(id)
    await pollUntil(
      async () => !['queued', 'sending'].includes(await status(id)),
      { description: `message ${id} sent` },
    )
    return id
  }

  function twilioForm(fields: Record<string, string>) {
    return post(
      server.url,
      '/api/webhooks/sms/status',
      new URLSearchParams(fields).toString(),
      FORM,
    )
  }

  function sendGridEvents(events: unknown) {
    return post(server.url, '/api/webhooks/email/events', events)
  }

  it('moves a sent SMS to delivered on a form-encoded Twilio report, and ignores a repeat', async () => {
    const id = await sendAndWait('sms')
    expect(await status(id)).toBe('sent')

    const first = await twilioForm({
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'delivered',
      AccountSid: 'AC123',
    })
    expect(first.status, first.text).toBe(200)
    expectCommonHeaders(first.headers)
    expect(first.body).toEqual(counts({ applied: 1 }))
    expect(await status(id)).toBe('delivered')

    const repeat = await twilioForm({
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'delivered',
    })
    expect(repeat.body).toEqual(counts({ unchanged: 1 }))
    expect(await status(id)).toBe('delivered')
  })

  it('never moves a delivered SMS back to sent, and ignores read', async () => {
    const id = String(lastId)

    const late = await twilioForm({
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'sent',
    })
    const read = await twilioForm({
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'read',
    })

    expect(late.body).toEqual(counts({ unchanged: 1 }))
    expect(read.body).toEqual(counts({ ignored: 1 }))
    expect(await status(id)).toBe('delivered')
  })

  it('takes a JSON Twilio report with an ErrorCode, and keeps an undelivered SMS undelivered', async () => {
    const id = await sendAndWait('sms')

    const report = await post(server.url, '/api/webhooks/sms/status', {
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'undelivered',
      ErrorCode: '30003',
    })
    const late = await post(server.url, '/api/webhooks/sms/status', {
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'delivered',
    })

    expect(report.status, report.text).toBe(200)
    expect(report.body).toEqual(counts({ applied: 1 }))
    expect(late.body).toEqual(counts({ unchanged: 1 }))
    expect(await status(id)).toBe('undelivered')
  })

  it('keeps a failed SMS failed whatever comes after', async () => {
    const id = await sendAndWait('sms')

    await twilioForm({
      MessageSid: `mock-sms-${id}-1`,
      MessageStatus: 'failed',
    })
    for (const later of ['sent', 'delivered', 'undelivered', 'canceled']) {
      const response = await twilioForm({
        MessageSid: `mock-sms-${id}-1`,
        MessageStatus: later,
      })
      expect(response.status).toBe(200)
    }

    expect(await status(id)).toBe('failed')
  })

  it('applies a Twilio report that arrives before the send stored the provider id', async () => {
    const next = lastId + 1

    const early = await twilioForm({
      MessageSid: `mock-sms-${next}-1`,
      MessageStatus: 'delivered',
    })
    expect(early.body).toEqual(counts({ pending: 1 }))
    const id = await sendAndWait('sms')

    expect(id).toBe(String(next))
    expect(await status(id)).toBe('delivered')
  })

  it('matches SendGrid events by the X-Message-Id prefix of sg_message_id and ignores engagement events', async () => {
    const id = await sendAndWait('email')
    const sgId = `mock-email-${id}-1.filter0001.16648.5515E0B88.0`

    const response = await sendGridEvents([
      { event: 'processed', sg_message_id: sgId },
      { event: 'delivered', sg_message_id: sgId, timestamp: 1730469600 },
      { event: 'open', sg_message_id: sgId },
      { event: 'click', sg_message_id: sgId, url: 'https://example.com' },
    ])

    expect(response.status, response.text).toBe(200)
    expect(response.body).toEqual(counts({ applied: 1, ignored: 3 }))
    expect(await status(id)).toBe('delivered')
  })

  it('bounces an email on a bounce event, and leaves it bounced', async () => {
    const id = await sendAndWait('email')
    const sgId = `mock-email-${id}-1.filter0002.1.0`

    const bounce = await sendGridEvents([
      { event: 'bounce', sg_message_id: sgId, reason: '550 no such user' },
    ])
    const late = await sendGridEvents([
      { event: 'delivered', sg_message_id: sgId },
    ])

    expect(bounce.body).toEqual(counts({ applied: 1 }))
    expect(late.body).toEqual(counts({ unchanged: 1 }))
    expect(await status(id)).toBe('bounced')
  })

  it('leaves an email sent on engagement events alone, and counts unusable events as ignored', async () => {
    const id = await sendAndWait('email')
    const sgId = `mock-email-${id}-1.filter0003.1.0`

    const response = await sendGridEvents([
      { event: 'open', sg_message_id: sgId },
      { event: 'spamreport', sg_message_id: sgId },
      { event: 'delivered' },
      { sg_message_id: sgId },
      'delivered',
      null,
      { event: 'teleported', sg_message_id: sgId },
      // No X-Message-Id before the first dot: nothing to match, ever.
      { event: 'delivered', sg_message_id: '.' },
      { event: 'bounce', sg_message_id: '.filter0003.1.0' },
    ])

    expect(response.body).toEqual(counts({ ignored: 9 }))
    expect(await status(id)).toBe('sent')
    expect((await sendGridEvents([])).body).toEqual(counts({}))
  })

  it('applies a SendGrid event that arrives before the send stored the provider id', async () => {
    const next = lastId + 1

    const early = await sendGridEvents([
      {
        event: 'dropped',
        sg_message_id: `mock-email-${next}-1.filter0004.1.0`,
      },
    ])
    expect(early.body).toEqual(counts({ pending: 1 }))
    const id = await sendAndWait('email')

    expect(id).toBe(String(next))
    expect(await status(id)).toBe('failed')
  })

  it('leaves a report for an unknown provider id pending, changing no message', async () => {
    const response = await twilioForm({
      MessageSid: 'SM-nobody-knows',
      MessageStatus: 'delivered',
    })

    expect(response.body).toEqual(counts({ pending: 1 }))
  })

  it('ignores statuses and events that only look like object properties', async () => {
    for (const name of [
      'constructor',
      '__proto__',
      'toString',
      'hasOwnProperty',
    ]) {
      const twilio = await twilioForm({
        MessageSid: `mock-sms-${name}`,
        MessageStatus: name,
      })
      expect(twilio.status, twilio.text).toBe(200)
      expect(twilio.body).toEqual(counts({ ignored: 1 }))

      const sendGrid = await sendGridEvents([
        { event: name, sg_message_id: `mock-email-${name}.filter0001` },
      ])
      expect(sendGrid.status, sendGrid.text).toBe(200)
      expect(sendGrid.body).toEqual(counts({ ignored: 1 }))
    }
  })

  it('answers 400 naming the missing fields of a Twilio report', async () => {
    const empty = await post(server.url, '/api/webhooks/sms/status', {})
    expectError(empty, 400, 'validation_failed')
    expect(detailFields(empty.body).sort()).toEqual([
      'MessageSid',
      'MessageStatus',
    ])

    const noStatus = await twilioForm({ MessageSid: 'mock-sms-1-1' })
    expectError(noStatus, 400, 'validation_failed')
    expect(detailFields(noStatus.body)).toEqual(['MessageStatus'])

    const blank = await post(server.url, '/api/webhooks/sms/status', {
      MessageSid: '  ',
      MessageStatus: 7,
    })
    expectError(blank, 400, 'validation_failed')
    expect(detailFields(blank.body).sort()).toEqual([
      'MessageSid',
      'MessageStatus',
    ])
  })

  it('says what is wrong with a Twilio report field that is there but unusable', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ MessageSid: 'S'.repeat(256) }, 'must be at most 255 characters'],
      [{ MessageSid: 42 }, 'must be a string'],
      [{ MessageSid: ['SM1'] }, 'must be a string'],
      [
        { MessageSid: 'SM\u0000x' },
        'must not contain NUL or unpaired surrogate characters',
      ],
    ]
    for (const [fields, message] of cases) {
      const response = await post(server.url, '/api/webhooks/sms/status', {
        MessageStatus: 'delivered',
        ...fields,
      })
      expectError(response, 400, 'validation_failed')
      expect(response.body.details).toEqual([{ field: 'MessageSid', message }])
    }
  })

  it('answers 400 naming the body when a Twilio report is JSON but not an object', async () => {
    for (const body of ['[]', 'null', '"x"', '42', '[{"MessageSid":"SM1"}]']) {
      const response = await post(server.url, '/api/webhooks/sms/status', body)
      expectError(response, 400, 'validation_failed')
      expect(detailFields(response.body)).toEqual(['(body)'])
    }
  })

  it('answers 400 when the SendGrid body is not an array of events', async () => {
    for (const body of [{ event: 'delivered' }, 'null', '"x"', '42']) {
      const response = await post(
        server.url,
        '/api/webhooks/email/events',
        body,
      )
      expectError(response, 400, 'validation_failed')
      expect(detailFields(response.body)).toEqual(['(body)'])
    }
  })

  it('answers 400 invalid_json and 415 for bodies it cannot read', async () => {
    expectError(
      await post(server.url, '/api/webhooks/sms/status', '{"MessageSid":'),
      400,
      'invalid_json',
    )
    expectError(
      await post(server.url, '/api/webhooks/email/events', '[{]'),
      400,
      'invalid_json',
    )
    expectError(
      await post(server.url, '/api/webhooks/sms/status', 'x', {
        'content-type': 'text/plain',
      }),
      415,
      'unsupported_media_type',
    )
    expectError(
      await post(
        server.url,
        '/api/webhooks/email/events',
        'event=delivered',
        FORM,
      ),
      415,
      'unsupported_media_type',
    )
  })
})
