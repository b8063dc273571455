/**
 * Rate limits on the real server process (DESIGN section 6, issue 4): the
 * per-IP token bucket on API routes at its default of 120 a minute, the
 * per-sender bucket on sends (60 a minute), and the webhooks' own bucket.
 * Every server here runs without the test suite's BULK_LIMITS, so the
 * limits are the defaults unless a test sets one.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { get, type JsonResponse, post } from './helpers/http.js'
import {
  expectError,
  mapLimit,
  readDatabase,
  readMetrics,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { cleanUpServers, startServerProcess } from './helpers/server-process.js'

afterAll(cleanUpServers)

/** Rows of the tables a request could write to. */
function storedRows(databasePath: string): Record<string, number> {
  return readDatabase(databasePath, (db) =>
    Object.fromEntries(
      [
        'conversations',
        'messages',
        'dispatch_jobs',
        'inbound_events',
        'idempotency_keys',
      ].map((table) => [
        table,
        (
          db.prepare(`select count(*) as n from ${table}`).get() as {
            n: number
          }
        ).n,
      ]),
    ),
  )
}

/** The `RateLimit-*` headers of a response, as numbers. */
function limitHeaders(response: JsonResponse) {
  const read = (name: string) => {
    const value = response.headers.get(name)
    expect(value, `${name} on a ${response.status}`).toMatch(/^\d+$/)
    return Number(value)
  }
  return {
    limit: read('ratelimit-limit'),
    remaining: read('ratelimit-remaining'),
    reset: read('ratelimit-reset'),
  }
}

/** Asserts a 429 of the limiter with its headers; returns them. */
function expectRateLimited(response: JsonResponse, limit: number) {
  expectError(response, 429, 'rate_limited')
  expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
  const headers = limitHeaders(response)
  expect(headers.limit).toBe(limit)
  expect(headers.remaining).toBe(0)
  expect(headers.reset).toBeGreaterThanOrEqual(1)
  expect(headers.reset).toBeLessThanOrEqual(60)
  return headers
}

/**
 * Asserts the `RateLimit-Remaining` values of the allowed answers of a
 * burst on a bucket of `limit` refilled at `limit`/60 a second over
 * `seconds`. The k-th admitted request (k from 1) leaves between
 * `limit - k` and `limit - k + refill` whole tokens, so, whatever order the
 * answers came back in, the i-th largest value (i from 0) lies between
 * `limit - 1 - i` and `limit - 1 - i + refill`.
 */
function expectCountdown(
  remaining: readonly number[],
  limit: number,
  seconds: number,
): void {
  const refill = Math.ceil((limit * seconds) / 60)
  const sorted = [...remaining].sort((a, b) => b - a)
  sorted.forEach((value, i) => {
    expect(value, `remaining #${i}`).toBeGreaterThanOrEqual(limit - 1 - i)
    expect(value, `remaining #${i}`).toBeLessThanOrEqual(limit - 1 - i + refill)
  })
}

describe('per-IP rate limit at the default of 120 a minute', () => {
  it('lets a burst of 200 reads from one IP through no faster than 120 + 2·t, refuses the rest with 429 and RateLimit headers, and counts every refusal', async () => {
    const server = await startServerProcess({ withoutBulkLimits: true })

    const started = performance.now()
    const answers = await mapLimit(Array.from({ length: 200 }), 20, () =>
      get(server.url, '/api/conversations'),
    )
    const seconds = (performance.now() - started) / 1000

    const allowed = answers.filter((a) => a.status === 200)
    const refused = answers.filter((a) => a.status !== 200)
    expect(allowed.length).toBeGreaterThanOrEqual(120)
    expect(allowed.length).toBeLessThanOrEqual(Math.floor(120 + 2 * seconds))
    for (const answer of refused) expectRateLimited(answer, 120)
    for (const answer of allowed) {
      const headers = limitHeaders(answer)
      expect(headers.limit).toBe(120)
      // Seconds until the bucket is full again: 2 tokens a second.
      expect(headers.reset).toBeGreaterThanOrEqual(1)
      expect(headers.reset).toBeLessThanOrEqual(60)
      expect(answer.headers.get('retry-after')).toBeNull()
    }
    expectCountdown(
      allowed.map((a) => limitHeaders(a).remaining),
      120,
      seconds,
    )
    expect((await readMetrics(server.url)).rate_limited).toBe(refused.length)
  })

  it('keeps webhooks on their own, higher limit while the API is exhausted for the same IP', async () => {
    const server = await startServerProcess({ withoutBulkLimits: true })
    const reads = await mapLimit(Array.from({ length: 125 }), 20, () =>
      get(server.url, '/api/conversations'),
    )
    expect(reads.some((r) => r.status === 429)).toBe(true)

    const hook = await post(server.url, '/api/webhooks/sms', smsWebhook())
    expect(hook.status, hook.text).toBe(202)
    expect(limitHeaders(hook).limit).toBe(6000)
    expect(limitHeaders(hook).remaining).toBe(5999)
    const read = await get(server.url, '/api/conversations')
    expectRateLimited(read, 120)
  })

  it('stores nothing for a send refused by the per-IP limit: of 200 sends from distinct senders only the accepted ones exist', async () => {
    const server = await startServerProcess({ withoutBulkLimits: true })

    const started = performance.now()
    const answers = await mapLimit(Array.from({ length: 200 }), 20, (_, i) =>
      post(
        server.url,
        '/api/messages/sms',
        smsSend({ from: `+1804555${String(1000 + i)}`, body: `burst ${i}` }),
      ),
    )
    const seconds = (performance.now() - started) / 1000

    const accepted = answers.filter((a) => a.status === 202)
    const refused = answers.filter((a) => a.status !== 202)
    expect(accepted.length).toBeGreaterThanOrEqual(120)
    expect(accepted.length).toBeLessThanOrEqual(Math.floor(120 + 2 * seconds))
    for (const answer of refused) expectRateLimited(answer, 120)

    const rows = storedRows(server.databasePath)
    expect(rows.messages).toBe(accepted.length)
    expect(rows.conversations).toBe(accepted.length)
    expect(rows.dispatch_jobs).toBe(accepted.length)
    const ids = new Set(accepted.map((a) => a.body.id as string))
    expect(ids.size).toBe(accepted.length)
    expect((await readMetrics(server.url)).rate_limited).toBe(refused.length)
  })
})

describe('per-IP rate limit and path spellings', () => {
  it('meters percent-encoded spellings of an API path in the same per-IP bucket', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: { API_RATE_LIMIT_PER_IP_PER_MIN: '3' },
    })
    const answers: JsonResponse[] = []
    for (const path of [
      '/api/conversations',
      '/%61pi/conversations',
      '/%61%70%69/%63onversations',
      '/%61pi/conversations',
    ]) {
      answers.push(await get(server.url, path))
    }
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([200, 200, 200])
    expect(answers.slice(0, 3).map((a) => limitHeaders(a).remaining)).toEqual([
      2, 1, 0,
    ])
    expectRateLimited(answers[3] as JsonResponse, 3)
  })
})

describe('per-sender rate limit at the default of 60 a minute', () => {
  it('refuses the 61st send from one sender, however its number is spelled, with 429, stores nothing for it, and reports the sender limit as the one closer to exhaustion', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: {
        API_RATE_LIMIT_PER_IP_PER_MIN: '1000000',
        // Quicker commits keep the 61 sends well inside one second.
        API_SQLITE_SYNCHRONOUS: 'NORMAL',
      },
    })
    // One sender, spelled three ways: the limit keys on the normalized address.
    const spellings = ['+18045550100', '+1 (804) 555-0100', '804-555-0100']

    const started = performance.now()
    const first = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        post(
          server.url,
          '/api/messages/sms',
          smsSend({ from: spellings[i % 3], body: `one of sixty, ${i}` }),
        ),
      ),
    )
    const sixtyFirst = await post(
      server.url,
      '/api/messages/sms',
      smsSend({ from: '+1.804.555.0100', body: 'one too many' }),
    )
    const seconds = (performance.now() - started) / 1000

    // The sender's bucket refills one token a second: within one second of
    // the first send, the 61st cannot pass.
    expect(seconds).toBeLessThan(1)
    for (const answer of first) {
      expect(answer.status, answer.text).toBe(202)
      // 1,000,000 a minute per IP is far from exhaustion; the sender's 60 is not.
      expect(limitHeaders(answer).limit).toBe(60)
    }
    expectCountdown(
      first.map((a) => limitHeaders(a).remaining),
      60,
      seconds,
    )
    expectRateLimited(sixtyFirst, 60)
    expect(sixtyFirst.body.message).toMatch(/sender/)

    expect(storedRows(server.databasePath).messages).toBe(60)
    expect((await readMetrics(server.url)).rate_limited).toBe(1)

    // Another sender from the same IP is not affected.
    const other = await post(
      server.url,
      '/api/messages/sms',
      smsSend({ from: '+18045550101' }),
    )
    expect(other.status, other.text).toBe(202)
    expect(limitHeaders(other)).toMatchObject({ limit: 60, remaining: 59 })
  })
})

describe('webhook rate limit', () => {
  it('meters webhooks per IP in a bucket apart from the API: each has its own limit, and a refused webhook stores nothing', async () => {
    const server = await startServerProcess({
      withoutBulkLimits: true,
      env: {
        API_RATE_LIMIT_PER_IP_PER_MIN: '4',
        API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN: '8',
      },
    })

    const reads: JsonResponse[] = []
    for (let i = 0; i < 5; i += 1) {
      reads.push(await get(server.url, '/api/conversations'))
    }
    expect(reads.slice(0, 4).map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(reads.slice(0, 4).map((r) => limitHeaders(r).remaining)).toEqual([
      3, 2, 1, 0,
    ])
    expectRateLimited(reads[4] as JsonResponse, 4)

    const hooks: JsonResponse[] = []
    for (let i = 0; i < 8; i += 1) {
      hooks.push(
        await post(
          server.url,
          '/api/webhooks/sms',
          smsWebhook({ messaging_provider_id: `SM-limit-${i}` }),
        ),
      )
    }
    for (const [i, hook] of hooks.entries()) {
      expect(hook.status, hook.text).toBe(202)
      expect(limitHeaders(hook)).toMatchObject({ limit: 8, remaining: 7 - i })
    }

    const ninth = await post(
      server.url,
      '/api/webhooks/sms',
      smsWebhook({ messaging_provider_id: 'SM-limit-9' }),
    )
    const status = await post(server.url, '/api/webhooks/sms/status', {
      MessageSid: 'SM-limit-0',
      MessageStatus: 'delivered',
    })
    expectRateLimited(ninth, 8)
    expectRateLimited(status, 8)

    expect(storedRows(server.databasePath).inbound_events).toBe(8)
    expect((await readMetrics(server.url)).rate_limited).toBe(3)
  })
})
