/**
 * Failover against the real server process: the SMS family lists the
 * Twilio-style adapter first (pointed at a standalone mock provider server,
 * started here on loopback, that answers every SMS with a 5xx) and the
 * in-process mock second. Once the first provider's breaker opens, SMS go
 * out through the second, and each message records which provider sent it.
 * Two mock providers of one family share their settings, so the first
 * provider here has to be another kind to be down alone. The tests share
 * one server and run in order.
 */
import {
  type MockProviderServer,
  startMockProviderServer,
} from '@parley/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post } from './helpers/http.js'
import { readMetrics, smsSend } from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

describe('failover to the second SMS provider over HTTP', () => {
  let twilioMock: MockProviderServer
  let server: ServerProcess

  beforeAll(async () => {
    twilioMock = await startMockProviderServer({
      seed: 7,
      sms: { errorPct: 100 },
    })
    const { accountSid, authToken } = twilioMock.credentials
    server = await startServerProcess({
      env: {
        API_SMS_PROVIDERS: 'twilio,mock',
        TWILIO_BASE_URL: twilioMock.url,
        TWILIO_ACCOUNT_SID: accountSid,
        TWILIO_AUTH_TOKEN: authToken,
        // The first transient failure opens the breaker for the whole test.
        API_BREAKER_ERROR_THRESHOLD: '1',
        API_BREAKER_OPEN_SECS: '600',
        API_WORKER_BACKOFF_BASE_MS: '10',
        API_WORKER_BACKOFF_MAX_MS: '20',
        API_WORKER_POLL_MS: '10',
        API_PROVIDER_SEED: '7',
      },
    })
  })

  afterAll(async () => {
    await cleanUpServers()
    await twilioMock?.close()
  })

  async function sendAndWait(): Promise<Record<string, unknown>> {
    const response = await post(server.url, '/api/messages/sms', smsSend())
    expect(response.status, response.text).toBe(202)
    const id = response.body.id as string
    const { value } = await pollUntil(
      async () => {
        const detail = await get(server.url, `/api/messages/${id}`)
        return detail.body.status === 'sent' && detail.body
      },
      { description: `message ${id} sent` },
    )
    return value
  }

  it('sends through the second provider once the first one’s breaker opens, and records it', async () => {
    const detail = await sendAndWait()

    expect(detail).toMatchObject({
      attempts: 2,
      provider: 'mock-sms',
      provider_message_id: `mock-sms-${detail.id}-2`,
    })
    const calls = twilioMock.requests()
    expect(calls).toHaveLength(1)
    expect(calls[0]).toMatchObject({ method: 'POST' })
  })

  it('sends later messages straight through the second provider while the first one’s breaker is open', async () => {
    const details = [await sendAndWait(), await sendAndWait()]

    for (const detail of details) {
      expect(detail).toMatchObject({
        attempts: 1,
        provider: 'mock-sms',
        provider_message_id: `mock-sms-${detail.id}-1`,
      })
    }
    expect(twilioMock.requests()).toHaveLength(1)
    expect(await readMetrics(server.url)).toMatchObject({
      provider_sms_mms_attempts: 4,
      provider_sms_mms_error: 1,
      provider_sms_mms_success: 3,
      provider_sms_mms_breaker_transitions: 1,
      provider_email_breaker_transitions: 0,
      dispatch_short_circuited: 0,
    })
  })
})
