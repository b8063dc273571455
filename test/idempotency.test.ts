/**
 * Idempotency-Key on the real server process (DESIGN section 4).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { get, post } from './helpers/http.js'
import { expectError, smsSend, smsWebhook } from './helpers/parley.js'
import { cleanUpServers, startServerProcess } from './helpers/server-process.js'

afterAll(cleanUpServers)

describe('Idempotency-Key', () => {
  it('makes 50 concurrent identical sends create exactly one message, and replays it byte for byte after a restart', async () => {
    const server = await startServerProcess()
    const key = { 'Idempotency-Key': 'order-4711' }
    const body = smsSend({ body: 'only once, please' })

    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        post(server.url, '/api/messages/sms', body, key),
      ),
    )

    const accepted = answers.filter((a) => a.status === 202)
    const fresh = accepted.filter(
      (a) => a.headers.get('idempotent-replayed') !== 'true',
    )
    expect(fresh).toHaveLength(1)
    for (const answer of answers) {
      expect([202, 409]).toContain(answer.status)
      if (answer.status === 409) {
        expectError(answer, 409, 'idempotency_in_progress')
      } else {
        expect(answer.text).toBe(fresh[0]?.text)
      }
    }
    const conversations = await get(server.url, '/api/conversations')
    expect(conversations.body.items).toHaveLength(1)
    expect(conversations.body.items[0].message_count).toBe(1)

    await server.stop()
    const restarted = await startServerProcess({
      databasePath: server.databasePath,
    })
    const replay = await post(restarted.url, '/api/messages/sms', body, key)
    expect(replay.status).toBe(202)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(replay.text).toBe(fresh[0]?.text)

    const other = await post(
      restarted.url,
      '/api/messages/sms',
      smsSend({ body: 'a different body' }),
      key,
    )
    expectError(other, 422, 'idempotency_key_reused')
    const after = await get(restarted.url, '/api/conversations')
    expect(after.body.items[0].message_count).toBe(1)
  })

  it('scopes keys to the route: the same key on a webhook is independent', async () => {
    const server = await startServerProcess()
    const key = { 'Idempotency-Key': 'same-key' }
    const send = await post(server.url, '/api/messages/sms', smsSend(), key)
    const hook = await post(server.url, '/api/webhooks/sms', smsWebhook(), key)

    expect(send.status).toBe(202)
    expect(hook.status).toBe(202)
    expect(hook.headers.get('idempotent-replayed')).toBeNull()
    const again = await post(server.url, '/api/webhooks/sms', smsWebhook(), key)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.text).toBe(hook.text)
  })

  it('rejects a key over 255 characters with 400 and stores nothing', async () => {
    const server = await startServerProcess()
    const answer = await post(server.url, '/api/messages/sms', smsSend(), {
      'Idempotency-Key': 'k'.repeat(256),
    })

    expectError(answer, 400, 'validation_failed')
    expect(answer.body.details).toEqual([
      expect.objectContaining({ field: 'Idempotency-Key' }),
    ])
    const conversations = await get(server.url, '/api/conversations')
    expect(conversations.body.items).toHaveLength(0)
  })
})
