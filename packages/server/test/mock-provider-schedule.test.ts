import { type FaultRates, scheduledFault } from '@parley/core'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type MockProviderServer,
  startMockProviderServer,
} from '../src/mock-provider/mock-provider-server.js'

const SID = 'ACmock'
const AUTH = `Basic ${Buffer.from('ACmock:mock-auth-token').toString('base64')}`
const TWILIO_PATH = `/2010-04-01/Accounts/${SID}/Messages.json`

let servers: MockProviderServer[] = []

async function start(options: Parameters<typeof startMockProviderServer>[0]) {
  const server = await startMockProviderServer(options)
  servers.push(server)
  return server
}

afterEach(async () => {
  await Promise.all(servers.map((server) => server.close()))
  servers = []
})

/** Posts one Twilio call for (message id, attempt); resolves its status. */
async function call(
  mock: MockProviderServer,
  messageId: string,
  attempt: number,
): Promise<number | 'dropped'> {
  try {
    const response = await fetch(`${mock.url}${TWILIO_PATH}`, {
      method: 'POST',
      headers: {
        authorization: AUTH,
        'content-type': 'application/x-www-form-urlencoded',
        'x-parley-message-id': messageId,
        'x-parley-attempt': String(attempt),
      },
      body: 'To=%2B12025550100&From=%2B18045551234&Body=hi',
    })
    await response.arrayBuffer()
    return response.status
  } catch {
    return 'dropped'
  }
}

/** Runs `count` calls, `width` at a time. */
async function callMany(
  mock: MockProviderServer,
  count: number,
  width = 32,
): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < count) {
      const index = next
      next += 1
      // Parley's message ids are decimal strings; four attempts each.
      await call(mock, String(1 + Math.floor(index / 4)), (index % 4) + 1)
    }
  }
  await Promise.all(Array.from({ length: width }, lane))
}

describe('the mock provider server fault schedule', () => {
  it('replays the same outcome per (message id, attempt), in any order', async () => {
    const rates = { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 }
    const a = await start({ seed: 1234, hangMs: 0, ...rates })
    const b = await start({ seed: 1234, hangMs: 0, ...rates })
    const calls = Array.from(
      { length: 40 },
      (_, i) => [`m${i % 10}`, 1 + (i % 4)] as const,
    )

    for (const [id, attempt] of calls) await call(a, id, attempt)
    for (const [id, attempt] of [...calls].reverse()) await call(b, id, attempt)

    const outcomes = (mock: MockProviderServer) =>
      Object.fromEntries(
        mock.requests().map((r) => [`${r.messageId}#${r.attempt}`, r.outcome]),
      )
    expect(outcomes(b)).toEqual(outcomes(a))
    expect(new Set(Object.values(outcomes(a))).size).toBeGreaterThan(2)
  })

  it('follows the same rule as the in-process mock provider', async () => {
    const schedule = {
      seed: 99,
      timeoutPct: 20,
      errorPct: 20,
      rateLimitPct: 20,
    }
    const mock = await start({ ...schedule, hangMs: 0 })
    const expected = {
      none: 'sent',
      timeout: 'timeout',
      error: 'error',
      rate_limit: 'rate_limit',
    }

    for (let i = 0; i < 30; i += 1) await call(mock, `id-${i}`, 2)

    for (const request of mock.requests()) {
      const fault = scheduledFault(schedule, 'sms', request.messageId!, 2)
      expect(request.outcome).toBe(expected[fault])
    }
  })

  it('answers timeout, 500/503 and 429 as configured', async () => {
    const mock = await start({ seed: 5, hangMs: 0, errorPct: 100 })

    expect(await call(mock, 'x', 1)).toBe(500)
    expect(await call(mock, 'x', 2)).toBe(503)

    mock.configure({ errorPct: 0, rateLimitPct: 100 })
    expect(await call(mock, 'x', 3)).toBe(429)

    mock.configure({ rateLimitPct: 0, timeoutPct: 100 })
    expect(await call(mock, 'x', 4)).toBe('dropped')
  })

  // The mix (10% timeouts, 30% 5xx, 10% 429) under three seeds,
  // and another mix under one.
  const RUNS: [number, FaultRates][] = [
    [1, { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 }],
    [42, { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 }],
    [20241101, { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 }],
    [7, { timeoutPct: 5, errorPct: 15, rateLimitPct: 25 }],
  ]

  it.each(RUNS)(
    'over 5,000 attempts with seed %i the shares are within 2 points of %j',
    async (seed, rates) => {
      const mock = await start({ seed, ...rates, hangMs: 0 })

      await callMany(mock, 5000)

      const requests = mock.requests()
      const share = (outcome: string) =>
        (100 * requests.filter((r) => r.outcome === outcome).length) /
        requests.length
      expect(requests).toHaveLength(5000)
      expect(Math.abs(share('timeout') - rates.timeoutPct)).toBeLessThanOrEqual(
        2,
      )
      expect(Math.abs(share('error') - rates.errorPct)).toBeLessThanOrEqual(2)
      expect(
        Math.abs(share('rate_limit') - rates.rateLimitPct),
      ).toBeLessThanOrEqual(2)
    },
  )
})
