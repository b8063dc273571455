/**
 * `parley load` waiting for the server: with an API key, under a per-client
 * limit its own polls share, and when the server goes away mid-wait.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from '../../../test/helpers/server-process.js'
import { type FakeServer, startFakeServer } from './fake-server.js'
import { assertBuilt, runCli } from './run-cli.js'

let server: ServerProcess
let fake: FakeServer

const apiKey = 'load-test-key-0123456789'

beforeAll(async () => {
  assertBuilt()
  fake = await startFakeServer()
  server = await startServerProcess({
    withoutBulkLimits: true,
    env: {
      API_KEYS: apiKey,
      API_RATE_LIMIT_PER_IP_PER_MIN: '30',
      API_RATE_LIMIT_PER_SENDER_PER_MIN: '1000000',
    },
  })
})

afterAll(async () => {
  await fake.close().catch(() => undefined)
  await cleanUpServers()
})

describe('parley load, waiting for the server', () => {
  it('polls with the API key, and tells its own 429s from the server being slow', async () => {
    const result = await runCli([
      'load',
      '--url',
      server.url,
      '--api-key',
      apiKey,
      '--count',
      '24',
      '--traffic',
      'sms,email',
      '--wait-timeout',
      '5',
      '--json',
    ])

    expect(result.code, result.stderr + result.stdout).toBe(0)
    const summary = JSON.parse(result.stdout)
    expect(summary.requests.accepted).toBe(24)
    expect(summary.server).toMatchObject({
      complete: true,
      dispatch: { expected: 24, done: 24 },
      wait_error: null,
    })
    // The 24 sends left 6 of the 30 tokens: the status reads ran out.
    expect(summary.server.polls_throttled).toBeGreaterThan(0)
    expect(summary.server.elapsed_ms).toBeLessThan(5000)
  })

  // A server whose queues read empty and whose messages read sent at once;
  // `/metrics` reports `counters(accepted)` of the sends accepted. Returns
  // how many times /metrics was read as JSON.
  function drainedServer(
    counters: (accepted: number) => Record<string, number>,
  ): () => number {
    let accepted = 0
    let metricsReads = 0
    fake.answerWith((request) => {
      if (request.method === 'POST') {
        accepted += 1
        return {
          status: 202,
          body: {
            status: 'accepted',
            id: String(accepted),
            conversation_id: '1',
          },
        }
      }
      if (request.url.startsWith('/metrics?')) {
        return {
          status: 200,
          body:
            'parley_queue_stats_up 1\n' +
            'parley_queue_depth{queue="dispatch",state="pending"} 0\n',
        }
      }
      if (request.url === '/metrics') {
        metricsReads += 1
        return { status: 200, body: counters(accepted) }
      }
      if (request.url.startsWith('/api/messages/')) {
        return { status: 200, body: { status: 'sent' } }
      }
      return { status: 200, body: { ok: true } }
    })
    return () => metricsReads
  }

  const dispatched = (count: number) => ({
    ts_unix_ms: Date.now(),
    dispatch_success: count,
  })

  const loadFake = (count: number) =>
    runCli(['load', '--url', fake.url, '--count', String(count), '--json'])

  it('reports the counters once they account for what the wait saw handled', async () => {
    // The counters show the work three scrapes after the queues read empty
    // (workers count a job once its commit is durable): the summary must
    // not report the early read.
    let scrapesAfterDrain = 0
    drainedServer((accepted) =>
      dispatched(accepted === 0 || scrapesAfterDrain++ < 3 ? 0 : accepted),
    )
    const result = await loadFake(6)

    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout)
    expect(summary.server).toMatchObject({ complete: true })
    expect(summary.counters).toEqual({ dispatch_success: 6 })
    expect(scrapesAfterDrain).toBe(4)
  })

  it('reports the counters as read once they stop moving short of the work (another instance did the rest)', async () => {
    const metricsReads = drainedServer(() => dispatched(1))
    const result = await loadFake(3)

    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout).counters).toEqual({})
    // Half a second of reads 20 ms apart, not the two seconds' hundred.
    expect(metricsReads()).toBeLessThan(40)
  })

  it('reads the counters once after the wait from a server whose /metrics has none of them', async () => {
    const metricsReads = drainedServer(() => ({ ts_unix_ms: Date.now() }))
    const result = await loadFake(3)

    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout).counters).toEqual({})
    expect(metricsReads()).toBe(2)
  })

  it('prints the summary, then the error, when the server goes away mid-wait', async () => {
    let id = 0
    fake.answerWith((request) => {
      if (request.method === 'POST') {
        id += 1
        return {
          status: 202,
          body: { status: 'accepted', id: String(id), conversation_id: '1' },
        }
      }
      if (request.url.startsWith('/metrics?')) {
        // The server "dies" at its first poll: the CLI's next read finds
        // nothing listening.
        setTimeout(() => void fake.close(), 0)
        return {
          status: 200,
          body:
            'parley_queue_stats_up 1\n' +
            'parley_queue_depth{queue="dispatch",state="pending"} 9\n',
        }
      }
      if (request.url.startsWith('/api/messages/')) {
        return { status: 200, body: { status: 'queued' } }
      }
      return { status: 200, body: { ok: true } }
    })

    const result = await runCli([
      'load',
      '--url',
      fake.url,
      '--count',
      '5',
      '--json',
    ])

    expect(result.code).toBe(1)
    const summary = JSON.parse(result.stdout)
    expect(summary.requests.accepted).toBe(5)
    expect(summary.server).toMatchObject({
      complete: false,
      dispatch: { expected: 5 },
      wait_error: expect.stringMatching(/^no Parley server answers/),
    })
    expect(result.stderr).toMatch(/\nerror: no Parley server answers at /)
  })
})
