import { describe, expect, it } from 'vitest'
import {
  failedAnswerOutcome,
  parseHttpDate,
  parseRetryAfter,
  printable,
  thrownOutcome,
  withoutSecret,
} from '../src/providers/http-outcome.js'

const NOW = Date.parse('2024-11-01T12:00:00.000Z')

describe('parseRetryAfter', () => {
  it('reads whole seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000)
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0)
  })

  it('reads an HTTP date relative to now, and a past one as 0', () => {
    expect(parseRetryAfter('Fri, 01 Nov 2024 12:00:30 GMT', NOW)).toBe(30_000)
    expect(parseRetryAfter('Fri, 01 Nov 2024 11:00:00 GMT', NOW)).toBe(0)
  })

  it.each([null, '', 'soon', '-1', '1.5', '1e3', 'Fri, 01 Nov 2024'])(
    'gives undefined for %j',
    (header) => {
      expect(parseRetryAfter(header, NOW)).toBeUndefined()
    },
  )
})

describe('parseHttpDate', () => {
  const at = Date.parse('1994-11-06T08:49:37.000Z')

  it('reads the three forms of RFC 9110, all as UTC', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(at)
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(at)
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(at)
  })

  it.each([
    'Mon, 31 Feb 2025 10:00:00 GMT',
    'Sun, 06 Nov 1994 08:49:37 PST',
    'Sun, 06 Foo 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 25:49:37 GMT',
    '2024-11-01T12:00:00Z',
  ])('refuses %j', (text) => {
    expect(parseHttpDate(text)).toBeUndefined()
  })
})

describe('failedAnswerOutcome', () => {
  it('makes 429 rate limited, with the wait when Retry-After is valid', () => {
    expect(failedAnswerOutcome(429, 'slow down', '3')).toEqual({
      kind: 'rate_limited',
      retryAfterMs: 3000,
      error: 'slow down',
    })
    expect(failedAnswerOutcome(429, 'slow down', 'later')).toEqual({
      kind: 'rate_limited',
      error: 'slow down',
    })
  })

  it.each([
    [408, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [400, 'permanent'],
    [401, 'permanent'],
    [403, 'permanent'],
    [404, 'permanent'],
    [422, 'permanent'],
    [301, 'permanent'],
  ] as const)('makes HTTP %i %s', (status, kind) => {
    expect(failedAnswerOutcome(status, 'x', null)).toEqual({
      kind,
      error: 'x',
    })
  })
})

describe('thrownOutcome', () => {
  it('says aborted when the signal fired, else names the network error', () => {
    const aborted = AbortSignal.abort()
    const live = new AbortController().signal
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    })

    expect(thrownOutcome(refused, aborted)).toEqual({
      kind: 'transient',
      error: 'aborted',
    })
    expect(thrownOutcome(refused, live)).toEqual({
      kind: 'transient',
      error: 'network error: ECONNREFUSED',
    })
  })
})

describe('printable and withoutSecret', () => {
  it('flattens control characters and cuts long text', () => {
    expect(printable('a\r\n\tb\u0000c')).toBe('a b c')
    expect(printable('x'.repeat(50), 10)).toBe(`${'x'.repeat(9)}…`)
  })

  it('redacts every occurrence of a secret', () => {
    expect(withoutSecret('token tok and tok', 'tok')).toBe(
      '[redacted]en [redacted] and [redacted]',
    )
  })
})
