/**
 * The Prometheus exposition of `/metrics` (DESIGN section 7): negotiated
 * by `?format=` or `Accept`, valid by the format's grammar and by a
 * published parser, and carrying every JSON counter with the same value,
 * directly or summed over its labels, plus the gauges the JSON lacks.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '@parley/core'
import { loadConfig, type RunningServer, startServer } from '@parley/server'
import parsePrometheus from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, post, request } from './helpers/http.js'
import {
  emailSend,
  emailWebhook,
  type Metrics,
  METRIC_FIELDS,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import { REPO_ROOT } from './helpers/server-process.js'
import {
  type ExposedFamily,
  readExposition,
} from './helpers/prometheus-text.js'

const TEXT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
// What Prometheus 2 and 3 send when they scrape, by default.
const PROMETHEUS_2_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
const PROMETHEUS_3_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2'

// Each JSON counter, the series that carries it, and the labels its value
// is summed over (written out here, not read from the source).
const SERIES_OF: Record<string, [string, Record<string, string>?]> = {
  rate_limited: ['parley_rate_limited_total'],
  breaker_open: ['parley_global_breaker_short_circuits_total'],
  breaker_transitions: ['parley_global_breaker_transitions_total'],
  dispatch_attempts: ['parley_dispatch_attempts_total'],
  dispatch_success: ['parley_dispatch_success_total'],
  dispatch_rate_limited: ['parley_dispatch_rate_limited_total'],
  dispatch_error: ['parley_dispatch_error_total'],
  provider_sms_mms_attempts: ['parley_dispatch_attempts_total', sms()],
  provider_sms_mms_success: ['parley_dispatch_success_total', sms()],
  provider_sms_mms_rate_limited: ['parley_dispatch_rate_limited_total', sms()],
  provider_sms_mms_error: ['parley_dispatch_error_total', sms()],
  provider_sms_mms_breaker_transitions: [
    'parley_provider_breaker_transitions_total',
    sms(),
  ],
  provider_email_attempts: ['parley_dispatch_attempts_total', email()],
  provider_email_success: ['parley_dispatch_success_total', email()],
  provider_email_rate_limited: ['parley_dispatch_rate_limited_total', email()],
  provider_email_error: ['parley_dispatch_error_total', email()],
  provider_email_breaker_transitions: [
    'parley_provider_breaker_transitions_total',
    email(),
  ],
  worker_claimed: ['parley_inbound_claimed_total'],
  worker_processed: ['parley_inbound_processed_total'],
  worker_error: ['parley_inbound_errors_total'],
  worker_dead_letter: ['parley_inbound_dead_letters_total'],
  invalid_routing: ['parley_invalid_routing_total'],
  conversations_created: ['parley_conversations_created_total'],
  conversations_reused: ['parley_conversations_reused_total'],
  conversations_failures: ['parley_conversation_upsert_failures_total'],
  dispatch_short_circuited: ['parley_dispatch_short_circuited_total'],
  dispatch_dead_letter: ['parley_dispatch_dead_letters_total'],
}

function sms(): Record<string, string> {
  return { family: 'sms' }
}

function email(): Record<string, string> {
  return { family: 'email' }
}

let dir: string
let server: RunningServer
let base: string
let json: Metrics
let text: string
let families: Map<string, ExposedFamily>

const SENDS = 24
const BURST = 25
const WEBHOOKS = 6
let refused = 0

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-prometheus-'))
  server = await startServer({
    config: loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: join(dir, 'parley.db'),
      API_SMS_PROVIDERS: 'mock,mock-b',
      API_PROVIDER_SMS_ERROR_PCT: '30',
      API_PROVIDER_SMS_RATELIMIT_PCT: '20',
      API_PROVIDER_SEED: '7',
      // One transient failure opens a breaker, whatever order the workers
      // take the jobs in: the traffic surely moves the breaker counters.
      API_BREAKER_ERROR_THRESHOLD: '1',
      API_BREAKER_OPEN_SECS: '1',
      API_WORKER_MAX_RETRIES: '2',
      API_WORKER_BACKOFF_BASE_MS: '5',
      API_WORKER_BACKOFF_MAX_MS: '20',
      API_WORKER_POLL_MS: '20',
      API_RETRY_AFTER_MAX_SECS: '0',
      API_RATE_LIMIT_PER_SENDER_PER_MIN: '20',
    }),
    logger: silentLogger,
  })
  base = server.url
  await sendTraffic()
  ;({ json, text } = await quietScrape())
  families = readExposition(text)
})

afterAll(async () => {
  await server?.shutdown()
  await rm(dir, { recursive: true, force: true })
})

// Sends from several numbers (one of them over its per-sender limit),
// emails, and inbound webhooks of both families.
async function sendTraffic(): Promise<void> {
  for (let index = 0; index < SENDS; index += 1) {
    const from = `+1804555${String(1000 + (index % 3)).padStart(4, '0')}`
    const answer = await post(base, '/api/messages/sms', smsSend({ from }))
    expect(answer.status).toBe(202)
  }
  const burst = await Promise.all(
    Array.from({ length: BURST }, () =>
      post(base, '/api/messages/sms', smsSend({ from: '+18045559999' })),
    ),
  )
  // 20 a minute: about 20 pass, the rest are refused (a slow machine may
  // refill a token or two meanwhile).
  refused = burst.filter((answer) => answer.status === 429).length
  expect(refused).toBeGreaterThanOrEqual(3)
  for (let index = 0; index < 3; index += 1) {
    expect((await post(base, '/api/messages/email', emailSend())).status).toBe(
      202,
    )
  }
  for (let index = 0; index < WEBHOOKS / 2; index += 1) {
    const id = String(index)
    const smsHook = smsWebhook({ messaging_provider_id: `SM-${id}` })
    const emailHook = emailWebhook({ xillio_id: `x-${id}` })
    expect((await post(base, '/api/webhooks/sms', smsHook)).status).toBe(202)
    expect((await post(base, '/api/webhooks/email', emailHook)).status).toBe(
      202,
    )
  }
}

// Waits until every accepted message is sent or dead-lettered and every
// webhook threaded, then scrapes JSON, text, JSON: the two JSON documents
// must agree (nothing moved in between), so the text saw the same counts.
async function quietScrape(): Promise<{ json: Metrics; text: string }> {
  const accepted = SENDS + (BURST - refused) + 3
  const { value } = await pollUntil(
    async () => {
      const before = (await get<Metrics>(base, '/metrics')).body
      const settled =
        before.dispatch_success + before.dispatch_dead_letter === accepted &&
        before.worker_processed === WEBHOOKS
      if (!settled) return undefined
      const scraped = await get(base, '/metrics?format=prometheus')
      const after = (await get<Metrics>(base, '/metrics')).body
      return sameCounters(before, after)
        ? { json: after, text: scraped.text }
        : undefined
    },
    { timeoutMs: 25_000, description: 'the traffic to settle' },
  )
  return value
}

function sameCounters(a: Metrics, b: Metrics): boolean {
  return METRIC_FIELDS.every(
    (field) => field === 'ts_unix_ms' || a[field] === b[field],
  )
}

function samplesOf(name: string) {
  const family = families.get(name)
  if (!family) throw new Error(`no family ${name} in\n${text}`)
  return family.samples
}

function sumOf(name: string, where: Record<string, string> = {}): number {
  return samplesOf(name)
    .filter((sample) =>
      Object.entries(where).every(
        ([key, value]) => sample.labels[key] === value,
      ),
    )
    .reduce((total, sample) => total + sample.value, 0)
}

describe('Prometheus exposition of /metrics', () => {
  it('moved the counters that the traffic should move', () => {
    expect(json.dispatch_error).toBeGreaterThan(0)
    expect(json.dispatch_rate_limited).toBeGreaterThan(0)
    expect(json.dispatch_success).toBeGreaterThan(0)
    expect(json.dispatch_dead_letter).toBeGreaterThan(0)
    expect(json.provider_sms_mms_breaker_transitions).toBeGreaterThan(0)
    expect(json.rate_limited).toBe(refused)
    expect(json.worker_processed).toBe(WEBHOOKS)
    expect(json.conversations_created).toBeGreaterThan(0)
  })

  it('follows the text format grammar and a published parser reads the same samples', () => {
    const parsed = parsePrometheus(text)
    expect(parsed.map((family) => family.name)).toEqual([...families.keys()])
    for (const family of parsed) {
      const own = families.get(family.name)
      expect(own?.type.toUpperCase(), family.name).toBe(family.type)
      expect(own?.help, family.name).toBe(family.help)
      if (family.type === 'SUMMARY') continue
      const values = family.metrics.map((metric) => Number(metric.value))
      expect(values, family.name).toEqual(
        own?.samples.map((sample) => sample.value),
      )
    }
  })

  it('carries every JSON counter with the same value, directly or summed over its labels', () => {
    const counters = METRIC_FIELDS.filter(
      (field) =>
        field !== 'ts_unix_ms' &&
        field !== 'worker_latency_avg_us' &&
        field !== 'worker_latency_max_us',
    )
    expect(Object.keys(SERIES_OF).sort()).toEqual([...counters].sort())
    for (const field of counters) {
      const [name, where] = SERIES_OF[field] ?? ['']
      expect(families.get(name)?.type, name).toBe('counter')
      expect(sumOf(name, where), field).toBe(json[field])
    }
  })

  it('labels provider calls by family and provider, so the JSON sums are visible per provider', () => {
    const providers = samplesOf('parley_dispatch_attempts_total').map(
      (sample) => `${sample.labels.family}/${sample.labels.provider}`,
    )
    expect(providers.sort()).toEqual([
      'email/mock-email',
      'sms/mock-sms',
      'sms/mock-sms-b',
    ])
    expect(
      sumOf('parley_dispatch_attempts_total', { provider: 'mock-sms-b' }),
    ).toBeGreaterThan(0)
    expect(sumOf('parley_rate_limited_total', { scope: 'sender' })).toBe(
      refused,
    )
  })

  it('gives the inbound latency as a summary whose average is the JSON average', () => {
    const [sum, count] = samplesOf('parley_inbound_latency_seconds')
    expect(count?.name).toBe('parley_inbound_latency_seconds_count')
    expect(count?.value).toBe(json.worker_processed)
    expect(Math.round(((sum?.value ?? 0) * 1e6) / json.worker_processed)).toBe(
      json.worker_latency_avg_us,
    )
    const [max] = samplesOf('parley_inbound_latency_max_seconds')
    expect(Math.round((max?.value ?? 0) * 1e6)).toBe(json.worker_latency_max_us)
  })

  it('adds a breaker state per provider, one state set to 1', () => {
    const samples = samplesOf('parley_provider_breaker_state')
    for (const provider of ['mock-sms', 'mock-sms-b', 'mock-email']) {
      const own = samples.filter((s) => s.labels.provider === provider)
      expect(own.map((s) => s.labels.state).sort()).toEqual([
        'closed',
        'half_open',
        'open',
      ])
      expect(own.reduce((total, s) => total + s.value, 0)).toBe(1)
    }
  })

  it('adds queue depth, oldest pending age and dead letters per queue', async () => {
    for (const queue of ['dispatch', 'inbound']) {
      expect(sumOf('parley_queue_depth', { queue })).toBe(0)
      expect(sumOf('parley_queue_oldest_pending_age_seconds', { queue })).toBe(
        0,
      )
    }
    expect(sumOf('parley_queue_dead_letters', { queue: 'dispatch' })).toBe(
      json.dispatch_dead_letter,
    )
    const listed = await get(base, '/api/dead-letters?queue=dispatch')
    expect(listed.body.meta.total).toBe(json.dispatch_dead_letter)
    expect(sumOf('parley_queue_dead_letters', { queue: 'inbound' })).toBe(0)
    expect(sumOf('parley_queue_stats_up')).toBe(1)
  })
})

describe('docs/metrics.md', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/metrics.md'), 'utf8')

  it('maps every JSON field to the series that carries it', () => {
    for (const [field, [series]] of Object.entries(SERIES_OF)) {
      const row = doc
        .split('\n')
        .find(
          (line) =>
            line.startsWith(`| \`${field}\` `) && line.includes('parley_'),
        )
      expect(row, field).toContain(series)
    }
  })

  it('describes every series the exposition has', () => {
    for (const name of families.keys()) expect(doc, name).toContain(name)
  })
})

describe('/metrics negotiation', () => {
  const textCases: [string, Record<string, string>][] = [
    ['?format=prometheus', {}],
    ['?format=prometheus', { accept: 'application/json' }],
    ['', { accept: PROMETHEUS_2_ACCEPT }],
    ['', { accept: PROMETHEUS_3_ACCEPT }],
    ['', { accept: 'text/plain' }],
    ['', { accept: 'text/*' }],
    ['', { accept: 'application/openmetrics-text' }],
    ['', { accept: 'application/json;q=0.5, text/plain' }],
  ]
  it.each(textCases)(
    'answers the text format for %s with Accept %j',
    async (query, headers) => {
      const answer = await get(base, `/metrics${query}`, headers)
      expect(answer.status).toBe(200)
      expect(answer.headers.get('content-type')).toBe(TEXT_TYPE)
      expect(answer.headers.get('vary')).toBe('Accept')
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff')
      expect(answer.text).toMatch(/^# HELP parley_/)
    },
  )

  const jsonCases: [string, Record<string, string>][] = [
    ['', {}],
    ['', { accept: '*/*' }],
    ['', { accept: 'application/*' }],
    ['', { accept: 'application/json, text/plain' }],
    ['', { accept: 'text/plain;q=0.5, application/json;q=0.9' }],
    ['?format=json', { accept: 'text/plain' }],
  ]
  it.each(jsonCases)(
    'answers JSON for %s with Accept %j',
    async (query, headers) => {
      const answer = await get(base, `/metrics${query}`, headers)
      expect(answer.status).toBe(200)
      expect(answer.headers.get('content-type')).toBe(
        'application/json; charset=utf-8',
      )
      expect(Object.keys(answer.body)).toEqual(
        expect.arrayContaining([...METRIC_FIELDS]),
      )
    },
  )

  it('refuses an Accept that rules out both forms with 406', async () => {
    const answer = await get(base, '/metrics', { accept: 'text/html' })
    expect(answer.status).toBe(406)
    expect(answer.body.code).toBe('not_acceptable')
  })

  it('refuses an unknown format with 400 naming the parameter', async () => {
    const answer = await get(base, '/metrics?format=xml')
    expect(answer.status).toBe(400)
    expect(answer.body.details).toEqual([
      { field: 'format', message: 'must be "json" or "prometheus"' },
    ])
  })

  it('answers HEAD with the headers of the text, and no body', async () => {
    const full = await get(base, '/metrics?format=prometheus')
    const head = await request(base, '/metrics?format=prometheus', {
      method: 'HEAD',
    })
    expect(head.status).toBe(200)
    expect(head.text).toBe('')
    expect(head.headers.get('content-type')).toBe(TEXT_TYPE)
    // Settled traffic: nothing moves between the two, not even a gauge.
    expect(Number(head.headers.get('content-length'))).toBe(
      Buffer.byteLength(full.text),
    )
  })
})
