/**
 * Concurrent first messages between the same two participants, over HTTP
 * against the real server process, make exactly one conversation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post } from './helpers/http.js'
import {
  allConversations,
  allMessages,
  emailSend,
  emailWebhook,
  type Metrics,
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

const A_FORMS = [
  '(804) 555-1234',
  '+18045551234',
  '804-555-1234',
  '804.555.1234',
  '+1 (804) 555-1234',
  '1 804 555 1234',
]
const B_FORMS = ['+12025550123', '(202) 555-0123', '202 555 0123']

const EMAIL_A_FORMS = [
  'support@parley.example',
  'Support <SUPPORT@Parley.Example>',
  'support+billing@parley.example',
  '"Parley, Support" <support+x@PARLEY.example>',
]
const EMAIL_B_FORMS = [
  'ann@customer.example',
  'Ann <Ann+promo@customer.example>',
]

describe('concurrent first messages', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess()
  })

  it('50 parallel first messages between two numbers, in mixed formats and both directions, make one conversation of 50', async () => {
    const requests = Array.from({ length: 50 }, (_, i) => {
      const a = A_FORMS[i % A_FORMS.length] as string
      const b = B_FORMS[i % B_FORMS.length] as string
      const timestamp = new Date(Date.UTC(2024, 10, 1, 14, 0, i)).toISOString()
      const fields = { body: `message ${i}`, timestamp }
      // Every fifth arrives as an inbound webhook, the rest are sends in
      // alternating directions.
      if (i % 5 === 4) {
        return post(
          server.url,
          '/api/webhooks/sms',
          smsWebhook({
            ...fields,
            from: b,
            to: a,
            messaging_provider_id: `SM-${i}`,
          }),
        )
      }
      const [from, to] = i % 2 === 0 ? [a, b] : [b, a]
      return post(
        server.url,
        '/api/messages/sms',
        smsSend({ ...fields, from, to }),
      )
    })
    const responses = await Promise.all(requests)
    for (const response of responses) {
      expect(response.status, response.text).toBe(202)
    }
    const conversationIds = new Set(
      responses.flatMap((response) =>
        response.body.conversation_id ? [response.body.conversation_id] : [],
      ),
    )
    expect([...conversationIds]).toEqual(['1'])

    const { value: conversations } = await pollUntil(
      async () => {
        const items = await allConversations(server.url)
        return items[0]?.message_count === 50 && items
      },
      { description: '50 messages threaded' },
    )
    expect(conversations).toEqual([
      expect.objectContaining({
        id: '1',
        key: 'sms:+12025550123<->+18045551234',
        participant_a: '+12025550123',
        participant_b: '+18045551234',
        message_count: 50,
        last_activity_at: '2024-11-01T14:00:49.000Z',
      }),
    ])
    const messages = await allMessages(server.url, '1')
    expect(messages.map((message) => message.body)).toEqual(
      Array.from({ length: 50 }, (_, i) => `message ${i}`),
    )

    // The inbound worker counts a message once its commit is durable,
    // which can be after the row is readable: wait for the count, then
    // check how it splits.
    const metrics = await threadedCount(server.url, 50)
    expect(metrics.conversations_created).toBe(1)
    expect(metrics.conversations_reused).toBe(49)
    expect(metrics.conversations_failures).toBe(0)
  })

  it('50 parallel first emails between two addresses, in case, tag and display-name variants, make one conversation', async () => {
    const before = await readMetrics(server.url)
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const a = EMAIL_A_FORMS[i % EMAIL_A_FORMS.length] as string
        const b = EMAIL_B_FORMS[i % EMAIL_B_FORMS.length] as string
        const fields = { body: `<p>email ${i}</p>` }
        if (i % 5 === 4) {
          return post(
            server.url,
            '/api/webhooks/email',
            emailWebhook({ ...fields, from: b, to: a, xillio_id: `xl-${i}` }),
          )
        }
        return post(
          server.url,
          '/api/messages/email',
          emailSend({ ...fields, from: a, to: b }),
        )
      }),
    )
    for (const response of responses) {
      expect(response.status, response.text).toBe(202)
    }

    const { value: conversations } = await pollUntil(
      async () => {
        const items = await allConversations(server.url)
        const email = items.filter((item) => item.channel === 'email')
        return email[0]?.message_count === 50 && email
      },
      { description: '50 emails threaded' },
    )
    expect(conversations).toHaveLength(1)
    expect(conversations[0]?.key).toBe(
      'email:ann@customer.example<->support@parley.example',
    )
    const after = await threadedCount(server.url, threaded(before) + 50)
    expect(after.conversations_created - before.conversations_created).toBe(1)
    expect(after.conversations_reused - before.conversations_reused).toBe(49)
  })
})

function threaded(metrics: Metrics): number {
  return metrics.conversations_created + metrics.conversations_reused
}

// The metrics once at least `count` messages have been threaded.
async function threadedCount(base: string, count: number): Promise<Metrics> {
  const { value } = await pollUntil(
    async () => {
      const metrics = await readMetrics(base)
      return threaded(metrics) >= count && metrics
    },
    { description: `${count} messages counted as threaded` },
  )
  return value
}
