import { afterEach, describe, expect, it } from 'vitest'
import { createParley, type Parley } from '../src/parley.js'
import { RateLimitedError } from '../src/errors.js'
import { createMockProvider } from '../src/providers/mock-provider.js'
import type { ParleyDatabase } from '../src/store/schema.js'
import {
  DIALECT_LABEL,
  ManualClock,
  rowCounts,
  smsRequest,
  testDb,
} from './support.js'

let db: ParleyDatabase
let parley: Parley

async function open(config = {}) {
  db = await testDb()
  const clock = new ManualClock()
  parley = await createParley({
    db,
    providers: [createMockProvider({ family: 'sms' })],
    clock,
    config,
    migrate: false,
  })
  return clock
}

afterEach(async () => {
  await parley.stop()
  await db.close()
})

describe(`the per-sender limit on send on ${DIALECT_LABEL}`, () => {
  it('refuses the 61st send of one sender at the default limit, storing nothing', async () => {
    await open()
    for (let i = 0; i < 60; i += 1) {
      const result = await parley.send(smsRequest({ body: `n${i}` }))
      expect(result.rateLimit.remaining).toBe(59 - i)
    }

    const refused = parley.send(smsRequest({ body: 'one too many' }))

    await expect(refused).rejects.toBeInstanceOf(RateLimitedError)
    await expect(refused).rejects.toMatchObject({
      code: 'rate_limited',
      decision: { allowed: false, limit: 60, retryAfterSeconds: 1 },
    })
    expect((await rowCounts(db)).messages).toBe(60)
    expect(parley.metrics.snapshot().rate_limited).toBe(1)
  })

  it('keys the limit on the normalized sender, whatever its spelling', async () => {
    await open({ rateLimitPerSenderPerMin: 2 })
    await parley.send(smsRequest({ from: '+18045551234' }))
    await parley.send(smsRequest({ from: '(804) 555-1234' }))

    await expect(
      parley.send(smsRequest({ from: '804.555.1234' })),
    ).rejects.toBeInstanceOf(RateLimitedError)
    const other = await parley.send(smsRequest({ from: '+12025550111' }))
    expect(other.rateLimit.allowed).toBe(true)
  })

  it('refills with time: a minute later the sender may send again', async () => {
    const clock = await open({ rateLimitPerSenderPerMin: 1 })
    await parley.send(smsRequest())
    await expect(parley.send(smsRequest())).rejects.toBeInstanceOf(
      RateLimitedError,
    )

    clock.advance(60_000)

    await expect(parley.send(smsRequest())).resolves.toMatchObject({
      replayed: false,
    })
  })
})

describe(`ingress.limitClient on ${DIALECT_LABEL}`, () => {
  it('refuses request 121 from one client at the API default and counts it', async () => {
    await open()
    for (let i = 0; i < 120; i += 1) {
      const decision = await parley.ingress.limitClient('198.51.100.7', 'api')
      expect(decision).toMatchObject({ allowed: true, remaining: 119 - i })
    }

    const refused = await parley.ingress.limitClient('198.51.100.7', 'api')

    expect(refused).toMatchObject({ allowed: false, retryAfterSeconds: 1 })
    expect(parley.metrics.snapshot().rate_limited).toBe(1)
  })

  it('keeps the webhook limit apart from the API limit', async () => {
    await open({ rateLimitPerIpPerMin: 1, rateLimitWebhookPerIpPerMin: 2 })
    await parley.ingress.limitClient('ip', 'api')

    const webhook = await parley.ingress.limitClient('ip', 'webhook')

    expect(webhook).toMatchObject({ allowed: true, limit: 2, remaining: 1 })
  })

  it('counts the edge breaker events in the metrics', async () => {
    await open()
    parley.ingress.breakerShortCircuited()
    parley.ingress.breakerTransitioned()
    parley.ingress.breakerTransitioned()

    expect(parley.metrics.snapshot()).toMatchObject({
      breaker_open: 1,
      breaker_transitions: 2,
    })
  })
})
