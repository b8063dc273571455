/**
 * How `parley load` waits for the server: the queue gauges of /metrics
 * (not rate limited) decide when all was handled, the CLI's own 429s are
 * counted apart, and a server that goes away ends the wait with what was
 * learnt so far.
 */
import { describe, expect, it } from 'vitest'

import { ApiClient } from '../src/api/api-client.js'
import { awaitServer, queuesDrained } from '../src/load/await-server.js'
import type { Expectation } from '../src/load/traffic.js'
import { stopSignal } from '../src/stop-signal.js'
import { deadServerUrl, useFakeServer } from './fake-server.js'

const server = useFakeServer()

function gauges(dispatchPending: number): string {
  return (
    'parley_queue_stats_up 1\n' +
    `parley_queue_depth{queue="dispatch",state="pending"} ${dispatchPending}\n` +
    'parley_queue_depth{queue="dispatch",state="running"} 0\n' +
    'parley_queue_depth{queue="inbound",state="pending"} 0\n' +
    'parley_queue_depth{queue="inbound",state="running"} 0\n'
  )
}

const sends = (count: number): Expectation[] =>
  Array.from({ length: count }, (_, index) => ({
    type: 'dispatch',
    messageId: String(index + 1),
  }))

function waitFor(client: ApiClient, expectations: Expectation[]) {
  const stop = stopSignal()
  return awaitServer({
    client,
    expectations,
    timeoutMs: 3000,
    concurrency: 4,
    intervalMs: 10,
    since: new Date(0).toISOString(),
    stop,
    now: () => performance.now(),
  }).finally(() => stop.dispose())
}

describe('queuesDrained', () => {
  it('is true only when the gauges were read and every queue is empty', () => {
    expect(queuesDrained(gauges(0))).toBe(true)
    expect(queuesDrained(gauges(3))).toBe(false)
    expect(queuesDrained(gauges(0).replace('stats_up 1', 'stats_up 0'))).toBe(
      undefined,
    )
    expect(queuesDrained('parley_queue_stats_up 1\n')).toBe(undefined)
    expect(queuesDrained('{"dispatch_attempts": 1}')).toBe(undefined)
  })
})

describe('awaitServer', () => {
  it('ends when the queues drain, and counts its own 429s apart', async () => {
    let metricsReads = 0
    server.answerWith((request) => {
      if (request.url.startsWith('/metrics')) {
        metricsReads += 1
        return { status: 200, body: gauges(metricsReads < 3 ? 5 : 0) }
      }
      const id = request.url.split('/').at(-1)
      if (id === '1') return { status: 200, body: { status: 'sent' } }
      return {
        status: 429,
        body: { code: 'rate_limited', message: 'too many requests' },
        headers: { 'retry-after': '30' },
      }
    })
    const started = performance.now()

    const progress = await waitFor(new ApiClient({ url: server.url }), sends(5))

    expect(performance.now() - started).toBeLessThan(2500)
    expect(progress.complete).toBe(true)
    expect(progress.failure).toBeUndefined()
    expect(progress.dispatchDone).toBe(1)
    expect(progress.dispatchStatuses.get('sent')).toBe(1)
    expect(progress.pollsThrottled).toBeGreaterThan(0)
    expect(progress.doneAtMs).toBe(progress.drainedAtMs)
  })

  it('reads the statuses once more when the queues drain, so none is left unread after a busy round', async () => {
    // Pending at the first two gauge reads (the API is read once, then not
    // for two seconds while busy), drained at the third: the statuses have
    // all moved on by then and must be read, not reported unread.
    let metricsReads = 0
    server.answerWith((request) => {
      if (request.url.startsWith('/metrics')) {
        metricsReads += 1
        return { status: 200, body: gauges(metricsReads < 3 ? 4 : 0) }
      }
      const status = metricsReads < 3 ? 'queued' : 'failed'
      return { status: 200, body: { status } }
    })

    const progress = await waitFor(new ApiClient({ url: server.url }), sends(4))

    expect(progress.complete).toBe(true)
    expect(progress.allRead).toBe(true)
    expect(Object.fromEntries(progress.dispatchStatuses)).toEqual({
      failed: 4,
    })
  })

  it('reads every status when the server has no queue gauges', async () => {
    server.answerWith((request) =>
      request.url.startsWith('/metrics')
        ? { status: 200, body: { dispatch_attempts: 1 } }
        : { status: 200, body: { status: 'failed' } },
    )

    const progress = await waitFor(new ApiClient({ url: server.url }), sends(3))

    expect(progress.complete).toBe(true)
    expect(progress.drainedAtMs).toBeUndefined()
    expect(progress.dispatchStatuses.get('failed')).toBe(3)
  })

  it('keeps what it learnt and the failure when the server goes away', async () => {
    const progress = await waitFor(
      new ApiClient({ url: await deadServerUrl() }),
      sends(3),
    )

    expect(progress.complete).toBe(false)
    expect(progress.dispatchExpected).toBe(3)
    expect(progress.failure?.code).toBe('server_unreachable')
  })
})
