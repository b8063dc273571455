/**
 * The first "Must show", end to end: 500 messages sent over HTTP to
 * the real server process, whose mock providers fail on a seeded schedule
 * (30% 5xx, 10% 429, 10% timeouts on both families). Every message ends
 * `sent` or `failed`, each one exactly as the schedule dictates (the first
 * attempt that draws no fault sends it; otherwise it fails after
 * 1 + API_WORKER_MAX_RETRIES attempts), and the metrics agree with the
 * attempts stored. Since the outcome follows from the seed alone, any
 * second run with that seed gives the same outcome per message; the core
 * suite (resilience-seeded-run) runs it twice on a manual clock.
 *
 * The simulated 429s ask for `Retry-After: 0` (set through the API before
 * the run), so that the provider pauses they cause do not stretch the run
 * to minutes; the breakers are switched off by a threshold no run reaches.
 */
import {
  type ChannelFamily,
  type FaultSchedule,
  scheduledFault,
} from '@parley/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post, request } from './helpers/http.js'
import {
  emailSend,
  mapLimit,
  readMetrics,
  smsSend,
  type Metrics,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const SEED = 20_241_101
const FAULTS = { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 }
const SCHEDULE: FaultSchedule = { ...FAULTS, seed: SEED }
const MAX_RETRIES = 3
const MESSAGES = 500

interface Outcome {
  status: string
  attempts: number
}

function predicted(family: ChannelFamily, id: string): Outcome {
  for (let attempt = 1; attempt <= 1 + MAX_RETRIES; attempt += 1) {
    if (scheduledFault(SCHEDULE, family, id, attempt) === 'none') {
      return { status: 'sent', attempts: attempt }
    }
  }
  return { status: 'failed', attempts: 1 + MAX_RETRIES }
}

describe('500 messages against seeded failing providers, over HTTP', () => {
  let server: ServerProcess
  const families = new Map<string, ChannelFamily>()
  const outcomes = new Map<string, Outcome>()
  let metrics: Metrics
  let deadLetters: number

  beforeAll(async () => {
    server = await startServerProcess({
      env: {
        API_PROVIDER_SEED: String(SEED),
        API_PROVIDER_TIMEOUT_PCT: String(FAULTS.timeoutPct),
        API_PROVIDER_ERROR_PCT: String(FAULTS.errorPct),
        API_PROVIDER_RATELIMIT_PCT: String(FAULTS.rateLimitPct),
        API_PROVIDER_TIMEOUT_MS: '50',
        API_WORKER_MAX_RETRIES: String(MAX_RETRIES),
        API_WORKER_BACKOFF_BASE_MS: '10',
        API_WORKER_BACKOFF_MAX_MS: '100',
        API_WORKER_POLL_MS: '10',
        API_DISPATCH_CONCURRENCY: '32',
        API_BREAKER_ERROR_THRESHOLD: '100000',
      },
    })
    const config = await request(server.url, '/api/provider/mock/config', {
      method: 'PUT',
      body: { retry_after_secs: 0 },
    })
    expect(config.status, config.text).toBe(200)

    const ids = await mapLimit(
      Array.from({ length: MESSAGES }, (_, i) => i),
      16,
      async (i) => {
        const family: ChannelFamily = i % 2 === 0 ? 'sms' : 'email'
        const response =
          family === 'sms'
            ? await post(server.url, '/api/messages/sms', smsSend())
            : await post(server.url, '/api/messages/email', emailSend())
        expect(response.status, response.text).toBe(202)
        return [response.body.id as string, family] as const
      },
    )
    for (const [id, family] of ids) families.set(id, family)

    await pollUntil(
      async () => {
        const m = await readMetrics(server.url)
        return m.dispatch_success + m.dispatch_dead_letter === MESSAGES
      },
      { timeoutMs: 45_000, description: 'every message settled' },
    )
    for (const id of families.keys()) {
      const detail = await get(server.url, `/api/messages/${id}`)
      outcomes.set(id, {
        status: detail.body.status,
        attempts: detail.body.attempts,
      })
    }
    metrics = await readMetrics(server.url)
    deadLetters = (await get(server.url, '/api/dead-letters?queue=dispatch'))
      .body.meta.total
  }, 60_000)

  const sum = (family?: ChannelFamily) =>
    [...outcomes]
      .filter(([id]) => family === undefined || families.get(id) === family)
      .reduce((total, [, outcome]) => total + outcome.attempts, 0)

  const count = (status: string, family?: ChannelFamily) =>
    [...outcomes].filter(
      ([id, outcome]) =>
        outcome.status === status &&
        (family === undefined || families.get(id) === family),
    ).length

  it('settles every message as sent or failed: none stuck, none lost', () => {
    expect(families.size).toBe(MESSAGES)
    expect(count('sent') + count('failed')).toBe(MESSAGES)
    expect(count('failed')).toBeGreaterThan(10)
  })

  it('gives each message the outcome its seeded schedule dictates, whatever order the workers took them in', () => {
    const wanted = new Map(
      [...families].map(([id, family]) => [id, predicted(family, id)]),
    )

    expect(outcomes).toEqual(wanted)
  })

  it('dead-letters each failed message after exactly 1 + API_WORKER_MAX_RETRIES attempts', () => {
    for (const [id, outcome] of outcomes) {
      if (outcome.status !== 'failed') continue
      expect(outcome.attempts, `message ${id}`).toBe(1 + MAX_RETRIES)
    }
    expect(deadLetters).toBe(count('failed'))
    expect(metrics.dispatch_dead_letter).toBe(count('failed'))
  })

  it('counts exactly the stored attempts and sends, in total and per family', () => {
    expect(metrics).toMatchObject({
      dispatch_attempts: sum(),
      dispatch_success: count('sent'),
      provider_sms_mms_attempts: sum('sms'),
      provider_sms_mms_success: count('sent', 'sms'),
      provider_email_attempts: sum('email'),
      provider_email_success: count('sent', 'email'),
      provider_sms_mms_breaker_transitions: 0,
      provider_email_breaker_transitions: 0,
    })
    expect(metrics.dispatch_error + metrics.dispatch_rate_limited).toBe(
      metrics.dispatch_attempts - metrics.dispatch_success,
    )
    expect(metrics.dispatch_rate_limited).toBeGreaterThan(0)
  })
})
