/**
 * `PUT /api/provider/mock/config`'s validation, called directly: a 400
 * names every bad field at once, whether its value has the wrong type or is
 * out of range, and a sum over 100 is found among the fields that are valid
 * on their own.
 */
import { createMockProvider, type FieldError } from '@parley/core'
import { describe, expect, it } from 'vitest'
import { HttpError } from '../src/http/http-error.js'
import type { HandlerInput } from '../src/http/handlers.js'
import { putMockConfig } from '../src/http/mock-config.js'

function mocks() {
  return [
    createMockProvider({ family: 'sms', seed: 7 }),
    createMockProvider({ family: 'sms', name: 'mock-sms-b', seed: 7 }),
    createMockProvider({
      family: 'email',
      seed: 99,
      faults: { timeoutPct: 5, errorPct: 10, rateLimitPct: 15 },
    }),
  ]
}

/** The details of the 400 `body` gets, and whether any setting changed. */
function refusal(body: unknown): {
  details: readonly FieldError[]
  changed: boolean
} {
  const providers = mocks()
  const before = providers.map((mock) => mock.settings())
  try {
    putMockConfig(providers, { body } as HandlerInput)
  } catch (error) {
    if (!(error instanceof HttpError)) throw error
    expect(error.code).toBe('validation_failed')
    const changed = providers.some((mock, i) => mock.settings() !== before[i])
    return { details: error.details ?? [], changed }
  }
  throw new Error('the body was accepted')
}

const WHOLE = 'must be a whole number'
const PCT = 'must be from 0 to 100'
const SUM = 'the percentages must add up to at most 100'

describe('putMockConfig', () => {
  it.each<[string, unknown, FieldError[]]>([
    [
      'a type error beside a range error',
      { error_pct: -5, ratelimit_pct: 1.5 },
      [
        { field: 'ratelimit_pct', message: WHOLE },
        { field: 'sms.error_pct', message: PCT },
        { field: 'email.error_pct', message: PCT },
      ],
    ],
    [
      'type errors, a family that is not an object, a range error and a sum',
      {
        error_pct: 50,
        timeout_pct: 60,
        sms: { seed: -1 },
        email: 5,
        ratelimit_pct: 1.5,
      },
      [
        { field: 'ratelimit_pct', message: WHOLE },
        { field: 'email', message: 'must be a JSON object' },
        { field: 'sms.seed', message: 'must be from 0 to 4294967295' },
        { field: 'sms', message: SUM },
      ],
    ],
    [
      'a type error in one family and a range error in the other',
      { sms: { timeout_pct: '10' }, email: { retry_after_secs: 3601 } },
      [
        { field: 'sms.timeout_pct', message: WHOLE },
        { field: 'email.retry_after_secs', message: 'must be from 0 to 3600' },
      ],
    ],
    [
      'a type error in a family beside a sum over 100 in it',
      { sms: { seed: null, timeout_pct: 70, error_pct: 40 } },
      [
        { field: 'sms.seed', message: WHOLE },
        { field: 'sms', message: SUM },
      ],
    ],
    [
      // Its value is unknown, so neither it nor the value it replaces
      // counts: 50 + 40 is fine, but 50 + 40 + the current 15 is not.
      'a bad percentage left out of the sum',
      { email: { timeout_pct: 50, error_pct: 40, ratelimit_pct: 'x' } },
      [{ field: 'email.ratelimit_pct', message: WHOLE }],
    ],
    [
      'a bad top-level field a family replaces with a good one',
      { error_pct: true, sms: { error_pct: 200 } },
      [
        { field: 'error_pct', message: WHOLE },
        { field: 'sms.error_pct', message: PCT },
      ],
    ],
    [
      'a good top-level field a family replaces with a bad one',
      { seed: -1, email: { seed: 'y' } },
      [
        { field: 'email.seed', message: WHOLE },
        { field: 'sms.seed', message: 'must be from 0 to 4294967295' },
      ],
    ],
    [
      // A percentage out of range is named on its own, not in a sum too.
      'every range error in every family at once',
      {
        error_pct: 101,
        sms: { timeout_pct: -1, seed: 4_294_967_296 },
        email: { retry_after_secs: -1 },
      },
      [
        { field: 'sms.timeout_pct', message: PCT },
        { field: 'sms.error_pct', message: PCT },
        { field: 'sms.seed', message: 'must be from 0 to 4294967295' },
        { field: 'email.error_pct', message: PCT },
        { field: 'email.retry_after_secs', message: 'must be from 0 to 3600' },
      ],
    ],
    [
      'a family that is not an object whose percentages add up to over 100',
      { timeout_pct: 60, error_pct: 50, sms: [1] },
      [
        { field: 'sms', message: 'must be a JSON object' },
        { field: 'email', message: SUM },
      ],
    ],
  ])('names every bad field of %s', (_, body, details) => {
    const refused = refusal(body)

    expect(refused.details).toEqual(details)
    expect(refused.changed).toBe(false)
  })

  it('applies a valid change to every mock of the family', () => {
    const providers = mocks()

    putMockConfig(providers, {
      body: { error_pct: 20, sms: { seed: 1 } },
    } as HandlerInput)

    expect(providers.map((mock) => mock.settings())).toEqual([
      expect.objectContaining({ errorPct: 20, seed: 1 }),
      expect.objectContaining({ errorPct: 20, seed: 1 }),
      expect.objectContaining({ errorPct: 20, seed: 99, timeoutPct: 5 }),
    ])
  })
})
