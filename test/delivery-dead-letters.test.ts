/**
 * The issue's last "Must show", against the real server process: a message
 * whose provider fails every call is dead-lettered; once the provider
 * recovers (`PUT /api/provider/mock/config`), replaying the dead letter
 * through the API delivers it. Also the dead-letter routes' errors and the
 * inbound queue's listing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post, request } from './helpers/http.js'
import {
  detailFields,
  emailSend,
  expectCommonHeaders,
  expectError,
  readMetrics,
  smsSend,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

/** A dead letter as the API lists it. */
interface DeadLetterItem {
  queue: string
  id: string
  message_id: string | null
  provider_message_id: string | null
  attempts: number
  last_error: string | null
  failed_at: string
}

describe('dead letters over HTTP', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: {
        API_PROVIDER_SMS_ERROR_PCT: '100',
        API_PROVIDER_SEED: '7',
        API_WORKER_MAX_RETRIES: '1',
        API_WORKER_BACKOFF_BASE_MS: '10',
        API_WORKER_BACKOFF_MAX_MS: '20',
        API_WORKER_POLL_MS: '10',
        // Two failures must dead-letter the message, not open the breaker.
        API_BREAKER_ERROR_THRESHOLD: '1000',
      },
    })
  })

  async function deadLetters(queue: string): Promise<DeadLetterItem[]> {
    const response = await get(server.url, `/api/dead-letters?queue=${queue}`)
    expect(response.status, response.text).toBe(200)
    return response.body.items as DeadLetterItem[]
  }

  async function message(id: string) {
    const response = await get(server.url, `/api/messages/${id}`)
    expect(response.status, response.text).toBe(200)
    return response.body
  }

  it('delivers a dead-lettered message replayed through the API once the provider recovers', async () => {
    const sent = await post(server.url, '/api/messages/sms', smsSend())
    expect(sent.status, sent.text).toBe(202)
    const id = sent.body.id as string

    const { value: letter } = await pollUntil(
      async () => (await deadLetters('dispatch'))[0],
      { description: 'the dead letter' },
    )
    expect(letter).toEqual({
      queue: 'dispatch',
      id: expect.stringMatching(/^[1-9][0-9]*$/),
      message_id: id,
      provider_message_id: null,
      attempts: 2,
      last_error: 'mock provider: 500 server error',
      failed_at: expect.stringMatching(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
      ),
    })
    expect(await message(id)).toMatchObject({
      status: 'failed',
      attempts: 2,
      last_error: 'mock provider: 500 server error',
      next_attempt_at: null,
      provider: null,
      provider_message_id: null,
    })
    // The worker counts the dead letter once its commit is durable, which
    // can be a moment after the row reads back.
    const { value: metrics } = await pollUntil(
      async () => {
        const read = await readMetrics(server.url)
        return read.dispatch_dead_letter > 0 && read
      },
      { description: 'the dead letter counted' },
    )
    expect(metrics).toMatchObject({
      dispatch_attempts: 2,
      dispatch_error: 2,
      dispatch_success: 0,
      dispatch_dead_letter: 1,
    })

    const recovered = await request(server.url, '/api/provider/mock/config', {
      method: 'PUT',
      body: { sms: { error_pct: 0 } },
    })
    expect(recovered.status, recovered.text).toBe(200)
    expect(recovered.body.sms.error_pct).toBe(0)

    const replay = await post(
      server.url,
      `/api/dead-letters/dispatch/${letter.id}/retry`,
      '',
      { 'content-type': 'application/json' },
    )
    expect(replay.status, replay.text).toBe(202)
    expectCommonHeaders(replay.headers)
    expect(replay.body).toEqual({
      status: 'accepted',
      queue: 'dispatch',
      id: letter.id,
    })

    const { value: delivered } = await pollUntil(
      async () => {
        const detail = await message(id)
        return detail.status === 'sent' && detail
      },
      { description: `message ${id} sent after the replay` },
    )
    expect(delivered).toMatchObject({
      attempts: 1,
      last_error: null,
      next_attempt_at: null,
      provider: 'mock-sms',
      provider_message_id: `mock-sms-${id}-1`,
    })
    expect(await deadLetters('dispatch')).toEqual([])
    expect(await readMetrics(server.url)).toMatchObject({
      dispatch_attempts: 3,
      dispatch_success: 1,
      dispatch_dead_letter: 1,
    })

    const again = await post(
      server.url,
      `/api/dead-letters/dispatch/${letter.id}/retry`,
      '',
    )
    expectError(again, 404, 'not_found')
  })

  it('answers 404 for a dead letter that does not exist', async () => {
    for (const path of [
      '/api/dead-letters/dispatch/999999/retry',
      '/api/dead-letters/dispatch/abc/retry',
      '/api/dead-letters/inbound/999999/retry',
    ]) {
      expectError(await post(server.url, path, ''), 404, 'not_found')
    }
  })

  it('answers 404 for a queue that does not exist', async () => {
    const response = await post(
      server.url,
      '/api/dead-letters/outbound/1/retry',
      '',
    )

    expectError(response, 404, 'not_found')
  })

  it('answers 400 naming the queue when the listing names no known queue', async () => {
    for (const query of ['?queue=outbound', '?queue=', '', '?queue=DISPATCH']) {
      const response = await get(server.url, `/api/dead-letters${query}`)
      expectError(response, 400, 'validation_failed')
      expect(detailFields(response.body), query).toEqual(['queue'])
    }
  })

  it('lists the inbound queue, empty when every webhook was threaded', async () => {
    const email = await post(server.url, '/api/messages/email', emailSend())
    expect(email.status).toBe(202)

    const response = await get(server.url, '/api/dead-letters?queue=inbound')

    expect(response.status).toBe(200)
    expectCommonHeaders(response.headers)
    expect(response.body).toEqual({
      items: [],
      meta: { page: 1, page_size: 50, total: 0 },
    })
  })

  it('pages the dispatch listing like every list', async () => {
    const response = await get(
      server.url,
      '/api/dead-letters?queue=dispatch&page=2&pageSize=10',
    )

    expect(response.status).toBe(200)
    expect(response.body.meta).toEqual({ page: 2, page_size: 10, total: 0 })
    expectError(
      await get(server.url, '/api/dead-letters?queue=dispatch&page=0'),
      400,
      'validation_failed',
    )
  })
})
