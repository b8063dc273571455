/**
 * The server wired to the Twilio-style and SendGrid-style adapters, with
 * the standalone mock provider server standing in for both on loopback.
 */
import {
  MOCK_PROVIDER_CREDENTIALS,
  type MockProviderServer,
  startMockProviderServer,
} from '@parley/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post } from './helpers/http.js'
import { emailSend, smsSend } from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

let mock: MockProviderServer
let server: ServerProcess

beforeAll(async () => {
  mock = await startMockProviderServer({ port: 0 })
  server = await startServerProcess({
    env: {
      API_SMS_PROVIDERS: 'twilio',
      API_EMAIL_PROVIDERS: 'sendgrid',
      TWILIO_BASE_URL: mock.url,
      TWILIO_ACCOUNT_SID: MOCK_PROVIDER_CREDENTIALS.accountSid,
      TWILIO_AUTH_TOKEN: MOCK_PROVIDER_CREDENTIALS.authToken,
      SENDGRID_BASE_URL: mock.url,
      SENDGRID_API_KEY: MOCK_PROVIDER_CREDENTIALS.apiKey,
      SENDGRID_DEFAULT_SUBJECT: 'From Parley',
      API_PUBLIC_URL: 'https://parley.example.test',
    },
  })
})

afterAll(async () => {
  await cleanUpServers()
  await mock?.close()
})

async function sentDetail(id: string) {
  const { value } = await pollUntil(async () => {
    const detail = await get(server.url, `/api/messages/${id}`)
    return detail.body.status === 'sent' ? detail.body : undefined
  })
  return value
}

describe('a server configured with the HTTP provider adapters', () => {
  it('delivers an SMS through the Twilio-style API and records its sid', async () => {
    const sent = await post(server.url, '/api/messages/sms', smsSend())
    expect(sent.status).toBe(202)

    const detail = await sentDetail(sent.body.id)
    expect(detail.provider).toBe('twilio')
    expect(detail.provider_message_id).toMatch(/^SM[0-9a-f]{32}$/)
    const call = mock
      .requests()
      .find((request) => request.messageId === sent.body.id)
    expect(call?.path).toBe(
      `/2010-04-01/Accounts/${MOCK_PROVIDER_CREDENTIALS.accountSid}/Messages.json`,
    )
    expect(call?.form?.StatusCallback).toEqual([
      'https://parley.example.test/api/webhooks/sms/status',
    ])
  })

  it('delivers an email through the SendGrid-style API with the default subject', async () => {
    const sent = await post(
      server.url,
      '/api/messages/email',
      emailSend({ subject: null }),
    )
    expect(sent.status).toBe(202)

    const detail = await sentDetail(sent.body.id)
    expect(detail.provider).toBe('sendgrid')
    const call = mock
      .requests()
      .find((request) => request.messageId === sent.body.id)
    expect(call?.path).toBe('/v3/mail/send')
    expect(call?.json).toMatchObject({ subject: 'From Parley' })
  })

  it('applies a status callback for the sid the provider returned', async () => {
    const sent = await post(server.url, '/api/messages/sms', smsSend())
    const detail = await sentDetail(sent.body.id)

    const callback = await fetch(`${server.url}/api/webhooks/sms/status`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        MessageSid: detail.provider_message_id,
        MessageStatus: 'delivered',
      }),
    })
    expect(callback.status).toBe(200)
    const after = await get(server.url, `/api/messages/${sent.body.id}`)
    expect(after.body.status).toBe('delivered')
  })
})
