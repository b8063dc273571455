/**
 * The first "Must show": 500 messages through mock providers that
 * fail on a seeded schedule (30% 5xx, 10% 429, 10% timeouts on both
 * families), driven on a manual clock until every message has settled.
 *
 * Whether attempt n of a message fails is a pure function of (seed,
 * family, message id, n), and deferrals (Retry-After pauses, open
 * breakers) are not attempts, so the outcome of each message can be
 * computed up front from `scheduledFault`: a message is sent by its first
 * attempt that draws no fault, or fails after 1 + maxRetries attempts. The
 * runs below are checked against that prediction, which also makes "two
 * runs give the same outcome" exact. The main runs switch the breakers off
 * (a threshold no run reaches); a separate run with eager breakers shows
 * that they reshape the schedule without changing any outcome.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import {
  type ChannelFamily,
  createMockProvider,
  type FaultSchedule,
  type MessageStatus,
  type MetricsSnapshot,
  type ParleyConfig,
  scheduledFault,
} from '@parley/core'
import {
  createHarness,
  DIALECT,
  DIALECT_LABEL,
  dispatchUntilSettled,
  emailRequest,
  type Harness,
  rowCounts,
  seededRandom,
  smsRequest,
} from './support.js'

const SEED = 20_241_101
const FAULTS = { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 } as const
const SCHEDULE: FaultSchedule = { ...FAULTS, seed: SEED }
const MAX_RETRIES = 3
const MAX_ATTEMPTS = 1 + MAX_RETRIES
// 500 as the issue asks; 250 on Postgres, where every commit waits for a
// WAL flush and the thousands of claim rounds of three runs take ~30 s
// instead of ~10 s. Every assertion below holds at either size.
const MESSAGES = DIALECT === 'postgres' ? 250 : 500

/** What became of one message. */
interface Outcome {
  readonly status: MessageStatus
  readonly attempts: number
}

interface RunOptions {
  readonly concurrency: number
  /** Seed of the jitter of backoff and deferrals. */
  readonly jitterSeed: number
  /** Breaker settings; by default a threshold no run reaches. */
  readonly breaker?: Pick<ParleyConfig, 'breakerThreshold' | 'breakerOpenMs'>
}

interface RunResult {
  readonly outcomes: Map<string, Outcome>
  readonly families: Map<string, ChannelFamily>
  readonly lastErrors: Map<string, string | null>
  readonly nextAttempts: Array<string | null>
  readonly metrics: MetricsSnapshot
  readonly jobStates: Record<string, number>
  readonly deadLetters: number
  readonly rows: Awaited<ReturnType<typeof rowCounts>>
}

/** Sends MESSAGES messages (SMS and email in turn) and dispatches them all. */
async function seededRun(options: RunOptions): Promise<RunResult> {
  const providers = [
    createMockProvider({ family: 'sms', faults: FAULTS, seed: SEED }),
    createMockProvider({ family: 'email', faults: FAULTS, seed: SEED }),
  ]
  const h = await createHarness({
    providers,
    random: seededRandom(options.jitterSeed),
    config: {
      maxRetries: MAX_RETRIES,
      // Simulated timeouts hang until this limit (real time) aborts them.
      providerTimeoutMs: 5,
      dispatchConcurrency: options.concurrency,
      breakerThreshold: 100_000,
      ...options.breaker,
    },
  })
  try {
    const families = await sendAll(h)
    // The clock moves in 200 ms ticks, as a worker polling at the default
    // interval would see time pass.
    await dispatchUntilSettled(h, h.dispatchWorker(), { tickMs: 200 })
    return await readResult(h, families)
  } finally {
    await h.close()
  }
}

async function sendAll(h: Harness): Promise<Map<string, ChannelFamily>> {
  const families = new Map<string, ChannelFamily>()
  for (let i = 0; i < MESSAGES; i += 1) {
    const family: ChannelFamily = i % 2 === 0 ? 'sms' : 'email'
    const { id } =
      family === 'sms'
        ? await h.parley.send(smsRequest({ body: `sms ${i}` }))
        : await h.parley.send(emailRequest({ body: `email ${i}` }), {
            channel: 'email',
          })
    families.set(id, family)
  }
  return families
}

async function readResult(
  h: Harness,
  families: Map<string, ChannelFamily>,
): Promise<RunResult> {
  const outcomes = new Map<string, Outcome>()
  const lastErrors = new Map<string, string | null>()
  const nextAttempts: Array<string | null> = []
  for (const id of families.keys()) {
    const detail = await h.parley.messages.get(id)
    outcomes.set(id, { status: detail.status, attempts: detail.attempts })
    lastErrors.set(id, detail.lastError)
    nextAttempts.push(detail.nextAttemptAt)
  }
  const states = await h.db.kysely
    .selectFrom('dispatch_jobs')
    .select(['state'])
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .groupBy('state')
    .execute()
  return {
    outcomes,
    families,
    lastErrors,
    nextAttempts,
    metrics: h.metrics.snapshot(),
    jobStates: Object.fromEntries(states.map((r) => [r.state, Number(r.n)])),
    deadLetters: (await h.parley.deadLetters.list('dispatch')).total,
    rows: await rowCounts(h.db),
  }
}

/** The outcome the seeded schedule dictates for one message. */
function predictedOutcome(family: ChannelFamily, id: string): Outcome {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    if (scheduledFault(SCHEDULE, family, id, attempt) === 'none') {
      return { status: 'sent', attempts: attempt }
    }
  }
  return { status: 'failed', attempts: MAX_ATTEMPTS }
}

function predictions(families: Map<string, ChannelFamily>) {
  return new Map(
    [...families].map(([id, family]) => [id, predictedOutcome(family, id)]),
  )
}

function sumAttempts(run: RunResult, family?: ChannelFamily): number {
  let sum = 0
  for (const [id, outcome] of run.outcomes) {
    if (family === undefined || run.families.get(id) === family) {
      sum += outcome.attempts
    }
  }
  return sum
}

function countStatus(
  run: RunResult,
  status: MessageStatus,
  family?: ChannelFamily,
): number {
  let count = 0
  for (const [id, outcome] of run.outcomes) {
    if (outcome.status !== status) continue
    if (family === undefined || run.families.get(id) === family) count += 1
  }
  return count
}

describe(`a seeded run of ${MESSAGES} messages against failing providers on ${DIALECT_LABEL}`, () => {
  let first: RunResult

  beforeAll(async () => {
    first = await seededRun({ concurrency: 32, jitterSeed: 1 })
  })

  it('settles every message as sent or failed: none stuck, none lost', () => {
    expect(first.outcomes.size).toBe(MESSAGES)
    expect(first.rows).toMatchObject({
      messages: MESSAGES,
      dispatch_jobs: MESSAGES,
    })
    const statuses = new Set([...first.outcomes.values()].map((o) => o.status))
    expect([...statuses].sort()).toEqual(['failed', 'sent'])
    const sent = countStatus(first, 'sent')
    const failed = countStatus(first, 'failed')
    expect(sent + failed).toBe(MESSAGES)
    expect(first.jobStates).toEqual({ done: sent, dead: failed })
    expect(first.nextAttempts.every((at) => at === null)).toBe(true)
  })

  it('gives each message the outcome its seeded schedule dictates', () => {
    expect(first.outcomes).toEqual(predictions(first.families))

    // The attempts made met every kind of fault, timeouts included.
    const met = new Map<string, number>()
    for (const [id, outcome] of first.outcomes) {
      const family = first.families.get(id) ?? 'sms'
      for (let attempt = 1; attempt <= outcome.attempts; attempt += 1) {
        const fault = scheduledFault(SCHEDULE, family, id, attempt)
        met.set(fault, (met.get(fault) ?? 0) + 1)
      }
    }
    for (const fault of ['timeout', 'error', 'rate_limit', 'none']) {
      expect(met.get(fault), fault).toBeGreaterThan(20)
    }
  })

  it('fails a message only after exactly 1 + maxRetries attempts, and dead-letters it', () => {
    const failed = [...first.outcomes].filter(([, o]) => o.status === 'failed')
    // The seed gives a fair number of both outcomes, or this proves little.
    expect(failed.length).toBeGreaterThan(10)
    for (const [id, outcome] of failed) {
      expect(outcome.attempts, `message ${id}`).toBe(MAX_ATTEMPTS)
      expect(first.lastErrors.get(id), `message ${id}`).toMatch(
        /mock provider|timed out/,
      )
    }
    expect(first.deadLetters).toBe(failed.length)
    expect(first.metrics.dispatch_dead_letter).toBe(failed.length)
  })

  it('counts exactly the stored attempts in dispatch_attempts and the sent messages in dispatch_success', () => {
    const m = first.metrics
    expect(m.dispatch_attempts).toBe(sumAttempts(first))
    expect(m.dispatch_success).toBe(countStatus(first, 'sent'))
    expect(m.dispatch_error + m.dispatch_rate_limited).toBe(
      m.dispatch_attempts - m.dispatch_success,
    )
    // Every kind of fault really happened.
    expect(m.dispatch_rate_limited).toBeGreaterThan(0)
    expect(m.dispatch_error).toBeGreaterThan(0)
  })

  it('agrees per family: provider_* counters match each family’s stored attempts and sends', () => {
    const m = first.metrics
    expect(m.provider_sms_mms_attempts).toBe(sumAttempts(first, 'sms'))
    expect(m.provider_sms_mms_success).toBe(countStatus(first, 'sent', 'sms'))
    expect(m.provider_email_attempts).toBe(sumAttempts(first, 'email'))
    expect(m.provider_email_success).toBe(countStatus(first, 'sent', 'email'))
    expect(m.provider_sms_mms_attempts + m.provider_email_attempts).toBe(
      m.dispatch_attempts,
    )
    expect(m.provider_sms_mms_error + m.provider_email_error).toBe(
      m.dispatch_error,
    )
    expect(
      m.provider_sms_mms_rate_limited + m.provider_email_rate_limited,
    ).toBe(m.dispatch_rate_limited)
    expect(m.provider_sms_mms_breaker_transitions).toBe(0)
    expect(m.provider_email_breaker_transitions).toBe(0)
  })

  it('gives the same outcome per message on a second run with the same seed, whatever the claim order', async () => {
    const second = await seededRun({ concurrency: 7, jitterSeed: 2 })

    expect(second.outcomes).toEqual(first.outcomes)
    expect(second.metrics.dispatch_attempts).toBe(
      first.metrics.dispatch_attempts,
    )
    expect(second.metrics.dispatch_success).toBe(first.metrics.dispatch_success)
  })

  it('gives the same outcome per message when eager breakers open and close along the way', async () => {
    const reshaped = await seededRun({
      concurrency: 16,
      jitterSeed: 3,
      breaker: { breakerThreshold: 3, breakerOpenMs: 5000 },
    })

    const m = reshaped.metrics
    expect(
      m.provider_sms_mms_breaker_transitions +
        m.provider_email_breaker_transitions,
    ).toBeGreaterThan(0)
    expect(m.dispatch_short_circuited).toBeGreaterThan(0)
    expect(reshaped.outcomes).toEqual(first.outcomes)
    expect(m.dispatch_attempts).toBe(sumAttempts(reshaped))
  })
})
