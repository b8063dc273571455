import { describe, expect, it } from 'vitest'
import { createSendGridProvider } from '../src/providers/sendgrid-provider.js'
import { createTwilioProvider } from '../src/providers/twilio-provider.js'
import type { OutboundMessage } from '../src/providers/provider.js'

const TOKEN = 'supersecrettoken19x'
const message: OutboundMessage = {
  id: '1',
  channel: 'sms',
  from: '+18045551234',
  to: '+12025550123',
  subject: 'Hi',
  body: 'hello',
  attachments: [],
  timestamp: '2024-11-01T14:00:00.000Z',
}
const context = { attempt: 1, signal: new AbortController().signal }

// An answer that echoes the secret where a 300-character cut falls.
function echoing(secret: string) {
  return async () =>
    new Response(`${'x'.repeat(285)} ${secret} ${secret}`, { status: 400 })
}

describe('provider errors never keep a secret, not even cut in half', () => {
  it.each([
    ['the auth token', TOKEN],
    ['the Basic credentials', Buffer.from(`ACx:${TOKEN}`).toString('base64')],
  ])('Twilio redacts %s before cutting the text', async (_, secret) => {
    const provider = createTwilioProvider({
      accountSid: 'ACx',
      authToken: TOKEN,
      baseUrl: 'http://127.0.0.1:2',
      fetch: echoing(secret),
    })

    const outcome = await provider.send(message, context)

    expect(outcome.kind).toBe('permanent')
    const error = (outcome as { error: string }).error
    expect(error).not.toContain(secret.slice(0, 8))
  })

  it('SendGrid redacts the API key before cutting the text', async () => {
    const apiKey = 'SG.secret-api-key-0123456789'
    const provider = createSendGridProvider({
      apiKey,
      baseUrl: 'http://127.0.0.1:2',
      fetch: echoing(apiKey),
    })

    const outcome = await provider.send(
      {
        ...message,
        channel: 'email',
        from: 'a@example.com',
        to: 'b@example.com',
      },
      context,
    )

    const error = (outcome as { error: string }).error
    expect(error).not.toContain(apiKey.slice(0, 8))
  })
})
