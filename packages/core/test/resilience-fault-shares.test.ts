/**
 * The second "Must show": over 5,000 attempts under each of several
 * fixed seeds, the shares of timeouts, 5xx and 429 that the seeded schedule
 * draws are within 2 percentage points of the configured ones. Fixed seeds
 * keep it deterministic: it can never be flaky.
 */
import { describe, expect, it } from 'vitest'
import {
  type ChannelFamily,
  createMockProvider,
  type FaultRates,
  type OutboundMessage,
  type ProviderOutcome,
  type ScheduledFault,
  scheduledFault,
} from '@parley/core'

const SEEDS = [0, 1, 42, 20_241_101, 0xffff_ffff] as const
const FAMILIES: readonly ChannelFamily[] = ['sms', 'email']
const RATES: readonly FaultRates[] = [
  { timeoutPct: 10, errorPct: 30, rateLimitPct: 10 },
  { timeoutPct: 5, errorPct: 20, rateLimitPct: 15 },
  { timeoutPct: 1, errorPct: 2, rateLimitPct: 3 },
]
const MESSAGES = 1000
const ATTEMPTS_EACH = 5
const DRAWS = MESSAGES * ATTEMPTS_EACH
const TOLERANCE_PCT = 2

type Shares = Record<ScheduledFault, number>

/** Every (message id, attempt) pair of a run of 5,000 attempts. */
function* attempts(): Generator<{ id: string; attempt: number }> {
  for (let n = 1; n <= MESSAGES; n += 1) {
    for (let attempt = 1; attempt <= ATTEMPTS_EACH; attempt += 1) {
      yield { id: String(n), attempt }
    }
  }
}

/** Percent of `draws` that fell on each fault. */
function shares(draws: readonly ScheduledFault[]): Shares {
  const counts: Shares = { none: 0, timeout: 0, error: 0, rate_limit: 0 }
  for (const draw of draws) counts[draw] += 1
  const pct = (n: number) => (n * 100) / draws.length
  return {
    none: pct(counts.none),
    timeout: pct(counts.timeout),
    error: pct(counts.error),
    rate_limit: pct(counts.rate_limit),
  }
}

function expectNear(observed: Shares, rates: FaultRates, label: string) {
  const wanted: Shares = {
    timeout: rates.timeoutPct,
    error: rates.errorPct,
    rate_limit: rates.rateLimitPct,
    none: 100 - rates.timeoutPct - rates.errorPct - rates.rateLimitPct,
  }
  for (const fault of Object.keys(wanted) as ScheduledFault[]) {
    const gap = Math.abs(observed[fault] - wanted[fault])
    expect(gap, `${label}: ${fault} at ${observed[fault]}%`).toBeLessThan(
      TOLERANCE_PCT,
    )
  }
}

function outbound(id: string, family: ChannelFamily): OutboundMessage {
  return {
    id,
    channel: family,
    from: family === 'sms' ? '+18045551234' : 'ann@example.com',
    to: family === 'sms' ? '+12025550100' : 'bob@example.com',
    subject: null,
    body: 'hello',
    attachments: [],
    timestamp: '2024-11-01T14:00:00.000Z',
  }
}

/** Reads back which fault a mock provider's outcome simulated. */
function faultOf(outcome: ProviderOutcome): ScheduledFault {
  switch (outcome.kind) {
    case 'sent':
      return 'none'
    case 'rate_limited':
      return 'rate_limit'
    case 'transient':
      return /simulated timeout/.test(outcome.error) ? 'timeout' : 'error'
    case 'permanent':
      throw new Error(`a mock provider never rejects: ${outcome.error}`)
  }
}

describe('the seeded fault schedule', () => {
  for (const rates of RATES) {
    const label = `${rates.timeoutPct}% timeouts, ${rates.errorPct}% 5xx, ${rates.rateLimitPct}% 429`
    it(`draws ${label} within 2 points over 5,000 attempts under each seed and family`, () => {
      for (const seed of SEEDS) {
        for (const family of FAMILIES) {
          const draws = [...attempts()].map(({ id, attempt }) =>
            scheduledFault({ ...rates, seed }, family, id, attempt),
          )
          expect(draws).toHaveLength(DRAWS)
          expectNear(shares(draws), rates, `seed ${seed}, ${family}`)
        }
      }
    })
  }

  it('gives the same draw for the same seed, family, message and attempt', () => {
    const schedule = { ...RATES[0]!, seed: 7 }
    const once = [...attempts()].map(({ id, attempt }) =>
      scheduledFault(schedule, 'sms', id, attempt),
    )
    const again = [...attempts()]
      .reverse()
      .map(({ id, attempt }) => scheduledFault(schedule, 'sms', id, attempt))
      .reverse()
    expect(again).toEqual(once)
  })

  it('draws differently under another seed or for the other family', () => {
    const draw = (seed: number, family: ChannelFamily) =>
      [...attempts()].map(({ id, attempt }) =>
        scheduledFault({ ...RATES[0]!, seed }, family, id, attempt),
      )
    const base = draw(7, 'sms')
    const differing = (other: ScheduledFault[]) =>
      other.filter((fault, i) => fault !== base[i]).length

    expect(differing(draw(8, 'sms'))).toBeGreaterThan(DRAWS / 4)
    expect(differing(draw(7, 'email'))).toBeGreaterThan(DRAWS / 4)
  })

  it('never fails at 0% and always fails at 100%', () => {
    for (const { id, attempt } of attempts()) {
      const none = { timeoutPct: 0, errorPct: 0, rateLimitPct: 0, seed: 3 }
      const all = { timeoutPct: 0, errorPct: 100, rateLimitPct: 0, seed: 3 }
      expect(scheduledFault(none, 'sms', id, attempt)).toBe('none')
      expect(scheduledFault(all, 'email', id, attempt)).toBe('error')
    }
  })
})

describe('MockProvider under a seeded schedule', () => {
  const rates = RATES[0]!

  for (const seed of [1, 42, 20_241_101]) {
    it(`answers with the configured shares over 5,000 calls, exactly as the schedule draws them (seed ${seed})`, async () => {
      const provider = createMockProvider({
        family: 'email',
        faults: rates,
        seed,
        retryAfterSecs: 2,
      })
      // An aborted signal ends a simulated timeout at once.
      const signal = AbortSignal.abort()
      const draws: ScheduledFault[] = []
      for (const { id, attempt } of attempts()) {
        const outcome = await provider.send(outbound(id, 'email'), {
          attempt,
          signal,
        })
        const fault = faultOf(outcome)
        expect(fault).toBe(
          scheduledFault({ ...rates, seed }, 'email', id, attempt),
        )
        if (outcome.kind === 'rate_limited') {
          expect(outcome.retryAfterMs).toBe(2000)
        }
        if (outcome.kind === 'sent') {
          expect(outcome.providerMessageId).toBe(`mock-email-${id}-${attempt}`)
        }
        draws.push(fault)
      }

      expectNear(shares(draws), rates, `MockProvider seed ${seed}`)
    })
  }

  it('hangs a simulated timeout until the caller aborts it', async () => {
    const provider = createMockProvider({
      family: 'sms',
      faults: { timeoutPct: 100 },
      seed: 1,
    })
    const controller = new AbortController()
    let settled = false
    const call = provider
      .send(outbound('1', 'sms'), { attempt: 1, signal: controller.signal })
      .finally(() => {
        settled = true
      })

    // Several turns of the event loop: an answer would have come by now.
    for (let turn = 0; turn < 5; turn += 1) {
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(settled).toBe(false)
    controller.abort()
    expect((await call).kind).toBe('transient')
  })

  it('applies a live configure from the next call and refuses a bad one whole', async () => {
    const provider = createMockProvider({ family: 'sms', seed: 5 })
    const signal = AbortSignal.abort()
    const before = provider.settings()

    expect(() =>
      provider.configure({ errorPct: 60, rateLimitPct: 50 }),
    ).toThrow(RangeError)
    expect(() => provider.configure({ timeoutPct: 1.5 })).toThrow(/timeoutPct/)
    expect(provider.settings()).toEqual(before)

    provider.configure({ errorPct: 100 })
    const failed = await provider.send(outbound('9', 'sms'), {
      attempt: 1,
      signal,
    })
    provider.configure({ errorPct: 0 })
    const sent = await provider.send(outbound('9', 'sms'), {
      attempt: 2,
      signal,
    })

    expect(failed.kind).toBe('transient')
    expect(sent).toEqual({ kind: 'sent', providerMessageId: 'mock-sms-9-2' })
    expect(provider.settings()).toMatchObject({ seed: 5, errorPct: 0 })
  })
})
