/**
 * Webhook signatures on the real server process (DESIGN section 4, issue
 * 4): Twilio's `X-Twilio-Signature` on SMS webhooks and status callbacks
 * (forms and JSON, over the URL the provider called, from
 * `API_PUBLIC_URL`), the Standard Webhooks scheme on email webhooks, and
 * SendGrid's ECDSA signature on email event callbacks. A refused webhook is
 * 401 and stores nothing.
 */
import { randomBytes } from 'node:crypto'
import {
  generateSendGridKeyPair,
  signSendGridRequest,
  signStandardWebhook,
  signTwilioRequest,
} from '@parley/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type JsonResponse, post } from './helpers/http.js'
import {
  emailWebhook,
  expectError,
  readDatabase,
  smsWebhook,
} from './helpers/parley.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'
/** Where providers call the server, as a proxy in front of it publishes it. */
const PUBLIC_URL = 'https://hooks.parley.test/base'
const SMS_TOKEN = `twilio-token-${randomBytes(8).toString('hex')}`
const EMAIL_SECRET = `whsec_${randomBytes(24).toString('base64')}`
const SENDGRID = generateSendGridKeyPair()

/**
 * Rows of the tables a webhook request writes to (the inbound worker turns
 * accepted events into messages later, on its own time).
 */
function storedRows(databasePath: string): Record<string, number> {
  return readDatabase(databasePath, (db) =>
    Object.fromEntries(
      ['inbound_events', 'pending_status_updates', 'idempotency_keys'].map(
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

function expectSignatureRefused(response: JsonResponse): void {
  expectError(response, 401, 'unauthorized')
  expect(response.headers.get('www-authenticate')).toBe(
    'Signature realm="parley-webhooks"',
  )
}

/** The path and query of a URL under {@link PUBLIC_URL}. */
function pathUnderPublicUrl(url: string): string {
  expect(url.startsWith(PUBLIC_URL)).toBe(true)
  return url.slice(PUBLIC_URL.length)
}

/** A Twilio-style inbound SMS form. */
function twilioInboundForm(sid: string): string {
  return new URLSearchParams({
    MessageSid: sid,
    AccountSid: 'AC0123456789',
    From: '+12025550123',
    To: '+18045551234',
    Body: 'Signed & sealed: 100% + more',
    NumMedia: '0',
  }).toString()
}

describe('Twilio signatures on SMS webhooks and status callbacks', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: { WEBHOOK_SMS_AUTH_TOKEN: SMS_TOKEN, API_PUBLIC_URL: PUBLIC_URL },
    })
  })

  /** Posts a form signed with `token` over `url` (default: the public URL). */
  function postSignedForm(
    path: string,
    body: string,
    options: { token?: string; url?: string; signature?: string | null } = {},
  ): Promise<JsonResponse> {
    const signed = signTwilioRequest({
      authToken: options.token ?? SMS_TOKEN,
      url: options.url ?? `${PUBLIC_URL}${path}`,
      contentType: FORM,
      rawBody: Buffer.from(body),
    })
    const signature =
      options.signature === undefined ? signed.signature : options.signature
    return post(server.url, path, body, {
      'content-type': FORM,
      ...(signature === null ? {} : { 'X-Twilio-Signature': signature }),
    })
  }

  it('refuses an SMS form webhook with a forged, missing, malformed or wrong-URL signature with 401, and stores nothing', async () => {
    const before = storedRows(server.databasePath)
    const body = twilioInboundForm('SM-forged')
    const path = '/api/webhooks/sms'

    const answers = [
      await postSignedForm(path, body, { token: 'not-the-auth-token' }),
      await postSignedForm(path, body, { signature: null }),
      await postSignedForm(path, body, { signature: 'not base64 at all' }),
      // Signed over the URL the socket saw, not the one providers call.
      await postSignedForm(path, body, { url: `${server.url}${path}` }),
      // Signed for another route.
      await postSignedForm(path, body, {
        url: `${PUBLIC_URL}/api/webhooks/sms/status`,
      }),
    ]
    // A valid signature over other parameters does not carry over.
    const signed = signTwilioRequest({
      authToken: SMS_TOKEN,
      url: `${PUBLIC_URL}${path}`,
      contentType: FORM,
      rawBody: Buffer.from(body),
    })
    answers.push(
      await post(server.url, path, body.replace('Signed', 'Forged'), {
        'content-type': FORM,
        'X-Twilio-Signature': signed.signature,
      }),
    )

    for (const answer of answers) expectSignatureRefused(answer)
    expect(storedRows(server.databasePath)).toEqual(before)
  })

  it('accepts an SMS form webhook signed over the public URL with 202', async () => {
    const before = storedRows(server.databasePath)
    const answer = await postSignedForm(
      '/api/webhooks/sms',
      twilioInboundForm('SM-signed-form'),
    )

    expect(answer.status, answer.text).toBe(202)
    expect(answer.body).toEqual({ status: 'accepted' })
    expect(storedRows(server.databasePath).inbound_events).toBe(
      before.inbound_events! + 1,
    )
  })

  it('checks a JSON SMS webhook by the signed URL and its bodySHA256: valid is 202, a changed body or a missing hash is 401', async () => {
    const before = storedRows(server.databasePath)
    const body = JSON.stringify(
      smsWebhook({ messaging_provider_id: 'SM-signed-json' }),
    )
    const signed = signTwilioRequest({
      authToken: SMS_TOKEN,
      url: `${PUBLIC_URL}/api/webhooks/sms`,
      contentType: JSON_TYPE,
      rawBody: Buffer.from(body),
    })
    const path = pathUnderPublicUrl(signed.url)
    expect(path).toMatch(/^\/api\/webhooks\/sms\?bodySHA256=[0-9a-f]{64}$/)
    const headers = { 'X-Twilio-Signature': signed.signature }

    const tampered = await post(
      server.url,
      path,
      body.replace('Hello', 'Jello'),
      headers,
    )
    const withoutHash = await post(
      server.url,
      '/api/webhooks/sms',
      body,
      headers,
    )
    const unsigned = await post(server.url, path, body)
    const forged = await post(server.url, path, body, {
      'X-Twilio-Signature': signTwilioRequest({
        authToken: 'not-the-auth-token',
        url: `${PUBLIC_URL}/api/webhooks/sms`,
        contentType: JSON_TYPE,
        rawBody: Buffer.from(body),
      }).signature,
    })
    for (const answer of [tampered, withoutHash, unsigned, forged]) {
      expectSignatureRefused(answer)
    }
    expect(storedRows(server.databasePath)).toEqual(before)

    const valid = await post(server.url, path, body, headers)
    expect(valid.status, valid.text).toBe(202)
    expect(storedRows(server.databasePath).inbound_events).toBe(
      before.inbound_events! + 1,
    )
  })

  it('refuses a status callback with a forged, missing or wrong-URL signature with 401 and keeps no report; a valid one is 200', async () => {
    const path = '/api/webhooks/sms/status'
    const body = new URLSearchParams({
      MessageSid: 'SM-status-signed',
      MessageStatus: 'delivered',
    }).toString()
    const before = storedRows(server.databasePath)

    const refused = [
      await postSignedForm(path, body, { token: 'not-the-auth-token' }),
      await postSignedForm(path, body, { signature: null }),
      await postSignedForm(path, body, { url: `${server.url}${path}` }),
    ]
    const json = JSON.stringify({
      MessageSid: 'SM-status-signed',
      MessageStatus: 'delivered',
    })
    refused.push(
      await post(server.url, path, json, {
        'X-Twilio-Signature': signTwilioRequest({
          authToken: 'not-the-auth-token',
          url: `${PUBLIC_URL}${path}`,
          contentType: JSON_TYPE,
          rawBody: Buffer.from(json),
        }).signature,
      }),
    )
    for (const answer of refused) expectSignatureRefused(answer)
    expect(storedRows(server.databasePath)).toEqual(before)

    // Nothing is sent with that id yet: a valid report is kept for later.
    const valid = await postSignedForm(path, body)
    expect(valid.status, valid.text).toBe(200)
    expect(valid.body).toMatchObject({ status: 'ok', pending: 1 })
    expect(storedRows(server.databasePath).pending_status_updates).toBe(
      before.pending_status_updates! + 1,
    )

    const signedJson = signTwilioRequest({
      authToken: SMS_TOKEN,
      url: `${PUBLIC_URL}${path}`,
      contentType: JSON_TYPE,
      rawBody: Buffer.from(json),
    })
    const validJson = await post(
      server.url,
      pathUnderPublicUrl(signedJson.url),
      json,
      { 'X-Twilio-Signature': signedJson.signature },
    )
    expect(validJson.status, validJson.text).toBe(200)
  })

  it('leaves the email webhooks unchecked when only the SMS token is set', async () => {
    const answer = await post(server.url, '/api/webhooks/email', emailWebhook())
    expect(answer.status, answer.text).toBe(202)
  })
})

describe('Twilio signatures without API_PUBLIC_URL', () => {
  it('checks the signature over the URL the server was called at, from its Host header', async () => {
    const server = await startServerProcess({
      env: { WEBHOOK_SMS_AUTH_TOKEN: SMS_TOKEN },
    })
    const path = '/api/webhooks/sms'
    const body = twilioInboundForm('SM-direct')
    const sign = (url: string) =>
      signTwilioRequest({
        authToken: SMS_TOKEN,
        url,
        contentType: FORM,
        rawBody: Buffer.from(body),
      }).signature

    const overPublicUrl = await post(server.url, path, body, {
      'content-type': FORM,
      'X-Twilio-Signature': sign(`${PUBLIC_URL}${path}`),
    })
    expectSignatureRefused(overPublicUrl)

    const direct = await post(server.url, path, body, {
      'content-type': FORM,
      'X-Twilio-Signature': sign(`${server.url}${path}`),
    })
    expect(direct.status, direct.text).toBe(202)
  })
})

describe('Standard Webhooks signatures on email webhooks', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: { WEBHOOK_EMAIL_SECRET: EMAIL_SECRET },
    })
  })

  it('accepts an email webhook with a valid signature with 202', async () => {
    const body = JSON.stringify(emailWebhook({ xillio_id: 'x-signed' }))
    const answer = await post(
      server.url,
      '/api/webhooks/email',
      body,
      signStandardWebhook({ secret: EMAIL_SECRET, rawBody: body }),
    )
    expect(answer.status, answer.text).toBe(202)
    expect(storedRows(server.databasePath).inbound_events).toBe(1)
  })

  it('refuses a stale (6 minutes old), forged, tampered or missing signature with 401 and stores nothing', async () => {
    const before = storedRows(server.databasePath)
    const body = JSON.stringify(emailWebhook({ xillio_id: 'x-refused' }))
    const path = '/api/webhooks/email'
    const now = Math.floor(Date.now() / 1000)
    const otherSecret = `whsec_${randomBytes(24).toString('base64')}`
    const valid = signStandardWebhook({ secret: EMAIL_SECRET, rawBody: body })

    const answers = [
      await post(
        server.url,
        path,
        body,
        signStandardWebhook({
          secret: EMAIL_SECRET,
          rawBody: body,
          timestamp: now - 360,
        }),
      ),
      await post(
        server.url,
        path,
        body,
        signStandardWebhook({
          secret: EMAIL_SECRET,
          rawBody: body,
          timestamp: now + 360,
        }),
      ),
      await post(
        server.url,
        path,
        body,
        signStandardWebhook({ secret: otherSecret, rawBody: body }),
      ),
      await post(server.url, path, body.replace('Hello', 'Jello'), valid),
      // A valid signature moved to a fresh timestamp.
      await post(server.url, path, body, {
        ...valid,
        'webhook-timestamp': String(Number(valid['webhook-timestamp']) + 1),
      }),
      await post(server.url, path, body),
      await post(server.url, path, body, {
        'webhook-id': valid['webhook-id'],
        'webhook-timestamp': valid['webhook-timestamp'],
      }),
    ]

    for (const answer of answers) expectSignatureRefused(answer)
    expect(storedRows(server.databasePath)).toEqual(before)
  })
})

describe('SendGrid signatures on email event callbacks', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: { WEBHOOK_SENDGRID_PUBLIC_KEY: SENDGRID.publicKey },
    })
  })

  const events = JSON.stringify([
    {
      email: 'ann@customer.example',
      event: 'delivered',
      sg_event_id: 'evt-1',
      sg_message_id: 'sg-signed-1.filter0001.1234.0',
      timestamp: 1_730_469_600,
    },
  ])

  it('accepts an event post with a valid signature with 200', async () => {
    const answer = await post(
      server.url,
      '/api/webhooks/email/events',
      events,
      signSendGridRequest({ privateKey: SENDGRID.privateKey, rawBody: events }),
    )
    expect(answer.status, answer.text).toBe(200)
    expect(answer.body).toMatchObject({ status: 'ok', pending: 1 })
    expect(storedRows(server.databasePath).pending_status_updates).toBe(1)
  })

  it('refuses a tampered body, another key, a stale timestamp or missing headers with 401, and keeps no report', async () => {
    const before = storedRows(server.databasePath)
    const path = '/api/webhooks/email/events'
    const other = generateSendGridKeyPair()
    const valid = signSendGridRequest({
      privateKey: SENDGRID.privateKey,
      rawBody: events,
    })

    const answers = [
      await post(
        server.url,
        path,
        events.replace('delivered', 'bounce'),
        valid,
      ),
      await post(
        server.url,
        path,
        events,
        signSendGridRequest({ privateKey: other.privateKey, rawBody: events }),
      ),
      await post(
        server.url,
        path,
        events,
        signSendGridRequest({
          privateKey: SENDGRID.privateKey,
          rawBody: events,
          timestamp: Math.floor(Date.now() / 1000) - 360,
        }),
      ),
      await post(server.url, path, events),
    ]

    for (const answer of answers) expectSignatureRefused(answer)
    expect(storedRows(server.databasePath)).toEqual(before)
  })
})
