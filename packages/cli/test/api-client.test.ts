/**
 * The HTTP client sends its own headers (the bearer key among them) on
 * every kind of request, whatever options the caller adds.
 */
import { describe, expect, it } from 'vitest'

import { ApiClient } from '../src/api/api-client.js'
import { answerAlways, useFakeServer } from './fake-server.js'

const server = useFakeServer(answerAlways(200, { ok: true }))

const key = 'secret-key-1'

const requests: Record<string, (client: ApiClient) => Promise<unknown>> = {
  get: (client) => client.get('api/messages/1'),
  'get with a query': (client) => client.get('api/conversations', { page: 2 }),
  post: (client) => client.post('api/messages/sms', {}),
  'post with headers': (client) =>
    client.post('api/messages/sms', {}, { 'idempotency-key': 'k' }),
  postSerialized: (client) => client.postSerialized('webhooks/sms', '{}'),
  'exchange get': (client) =>
    client.exchange('api/messages/7', { method: 'get' }),
  'exchange get with a query': (client) =>
    client.exchange('api/conversations', {
      method: 'get',
      searchParams: { page: 1 },
    }),
  'exchange post with a body': (client) =>
    client.exchange('api/messages/sms', { method: 'post', body: '{}' }),
  'exchange post with headers': (client) =>
    client.exchange('webhooks/sms', {
      method: 'post',
      body: '{}',
      headers: { 'x-signature': 's' },
    }),
}

describe('ApiClient', () => {
  for (const [name, send] of Object.entries(requests)) {
    it(`sends the bearer key and user agent on ${name}`, async () => {
      const client = new ApiClient({
        url: server.url,
        apiKey: key,
        userAgent: 'parley-test',
      })
      await send(client)
      const request = server.requests.at(-1)
      expect(request?.headers.authorization).toBe(`Bearer ${key}`)
      expect(request?.headers['user-agent']).toBe('parley-test')
    })
  }
})
