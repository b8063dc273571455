/**
 * The global breaker on a manual clock: closed -> open after the threshold
 * of consecutive backend failures -> half-open after the cool-down -> one
 * trial -> closed or open again. Neutral outcomes and stale settlements
 * change nothing.
 */
import {
  NotFoundError,
  UnavailableError,
  ValidationError,
  type Clock,
} from '@parley/core'
import { describe, expect, it } from 'vitest'
import {
  type BreakerPass,
  type GlobalAdmission,
  GlobalBreaker,
  type GlobalBreakerOptions,
  breakerOpenError,
  failureMessage,
  requestOutcome,
} from '../src/http/global-breaker.js'
import { HttpError } from '../src/http/http-error.js'

const OPEN_MS = 10_000

class ManualClock implements Clock {
  t = Date.UTC(2024, 10, 1)

  now(): number {
    return this.t
  }

  advance(ms: number): void {
    this.t += ms
  }
}

function setUp(options: Partial<GlobalBreakerOptions> = {}) {
  const clock = new ManualClock()
  const transitions: string[] = []
  const shortCircuits: number[] = []
  const breaker = new GlobalBreaker({
    threshold: 3,
    openMs: OPEN_MS,
    clock,
    onTransition: (from, to) => transitions.push(`${from} -> ${to}`),
    onShortCircuit: (seconds) => shortCircuits.push(seconds),
    ...options,
  })
  return { breaker, clock, transitions, shortCircuits }
}

function pass(admission: GlobalAdmission): BreakerPass {
  if (!admission.allowed) throw new Error('expected the request to pass')
  return admission
}

function failTimes(breaker: GlobalBreaker, times: number): void {
  for (let i = 0; i < times; i += 1) {
    breaker.settle(pass(breaker.admit()), 'backend_failure')
  }
}

function openBreaker() {
  const setup = setUp()
  failTimes(setup.breaker, 3)
  expect(setup.breaker.state).toBe('open')
  return setup
}

describe('GlobalBreaker', () => {
  it('opens after the threshold of consecutive backend failures, not before', () => {
    const { breaker, transitions } = setUp()

    failTimes(breaker, 2)
    expect(breaker.state).toBe('closed')
    failTimes(breaker, 1)

    expect(breaker.state).toBe('open')
    expect(transitions).toEqual(['closed -> open'])
  })

  it('starts counting again after a success', () => {
    const { breaker } = setUp()

    failTimes(breaker, 2)
    breaker.settle(pass(breaker.admit()), 'success')
    failTimes(breaker, 2)

    expect(breaker.state).toBe('closed')
  })

  it('neither counts nor forgives neutral outcomes (4xx, its own 503s)', () => {
    const { breaker } = setUp()

    failTimes(breaker, 2)
    for (let i = 0; i < 10; i += 1) {
      breaker.settle(pass(breaker.admit()), 'neutral')
    }
    expect(breaker.state).toBe('closed')
    failTimes(breaker, 1)

    expect(breaker.state).toBe('open')
  })

  it('short-circuits while open with the seconds left until half-open', () => {
    const { breaker, clock, shortCircuits } = openBreaker()

    expect(breaker.admit()).toEqual({ allowed: false, retryAfterSeconds: 10 })
    clock.advance(1)
    expect(breaker.admit()).toEqual({ allowed: false, retryAfterSeconds: 10 })
    clock.advance(4_000)
    expect(breaker.admit()).toEqual({ allowed: false, retryAfterSeconds: 6 })
    clock.advance(5_998)
    expect(breaker.admit()).toEqual({ allowed: false, retryAfterSeconds: 1 })

    expect(shortCircuits).toEqual([10, 10, 6, 1])
  })

  it('lets exactly one trial through once half-open; the rest wait a second', () => {
    const { breaker, clock, transitions, shortCircuits } = openBreaker()
    clock.advance(OPEN_MS)

    const trial = pass(breaker.admit())
    const others = [breaker.admit(), breaker.admit()]

    expect(trial.trial).toBe(true)
    expect(others).toEqual([
      { allowed: false, retryAfterSeconds: 1 },
      { allowed: false, retryAfterSeconds: 1 },
    ])
    expect(shortCircuits).toHaveLength(2)
    expect(transitions).toEqual(['closed -> open', 'open -> half_open'])
  })

  it('closes when the trial succeeds', () => {
    const { breaker, clock, transitions } = openBreaker()
    clock.advance(OPEN_MS)

    breaker.settle(pass(breaker.admit()), 'success')

    expect(breaker.state).toBe('closed')
    expect(transitions.at(-1)).toBe('half_open -> closed')
    expect(pass(breaker.admit()).trial).toBe(false)
    // A closed breaker counts from zero again.
    failTimes(breaker, 2)
    expect(breaker.state).toBe('closed')
  })

  it('reopens for another cool-down when the trial fails', () => {
    const { breaker, clock, transitions } = openBreaker()
    clock.advance(OPEN_MS)

    breaker.settle(pass(breaker.admit()), 'backend_failure')

    expect(breaker.state).toBe('open')
    expect(breaker.admit()).toEqual({ allowed: false, retryAfterSeconds: 10 })
    expect(transitions).toEqual([
      'closed -> open',
      'open -> half_open',
      'half_open -> open',
    ])
    clock.advance(OPEN_MS)
    expect(pass(breaker.admit()).trial).toBe(true)
  })

  it('hands the trial to the next request when a trial ends neutral', () => {
    const { breaker, clock } = openBreaker()
    clock.advance(OPEN_MS)
    const first = pass(breaker.admit())

    breaker.settle(first, 'neutral')
    const second = pass(breaker.admit())
    breaker.settle(first, 'success')

    expect(second.trial).toBe(true)
    expect(breaker.state).toBe('half_open')
    breaker.settle(second, 'success')
    expect(breaker.state).toBe('closed')
  })

  it('ignores late settlements of requests admitted before it opened', () => {
    const { breaker, clock } = setUp()
    const early = pass(breaker.admit())
    const lateFailure = pass(breaker.admit())
    failTimes(breaker, 3)
    clock.advance(OPEN_MS)
    expect(breaker.state).toBe('half_open')

    breaker.settle(early, 'success')
    expect(breaker.state).toBe('half_open')
    const trial = pass(breaker.admit())
    breaker.settle(trial, 'success')
    failTimes(breaker, 2)
    breaker.settle(lateFailure, 'backend_failure')

    expect(breaker.state).toBe('closed')
  })

  it('gives up a trial that never settles after trialTimeoutMs', () => {
    const { breaker, clock } = openBreaker()
    clock.advance(OPEN_MS)
    const lost = pass(breaker.admit())

    clock.advance(29_999)
    expect(breaker.admit()).toMatchObject({ allowed: false })
    clock.advance(1)
    const next = pass(breaker.admit())
    breaker.settle(lost, 'backend_failure')

    expect(next.trial).toBe(true)
    expect(breaker.state).toBe('half_open')
    breaker.settle(next, 'success')
    expect(breaker.state).toBe('closed')
  })

  it('honours a custom trialTimeoutMs', () => {
    const { breaker, clock } = setUp({ trialTimeoutMs: 500 })
    failTimes(breaker, 3)
    clock.advance(OPEN_MS)
    pass(breaker.admit())

    clock.advance(500)

    expect(pass(breaker.admit()).trial).toBe(true)
  })

  it.each([
    [{ threshold: 0 }, /threshold.*got 0/],
    [{ threshold: 1.5 }, /threshold.*got 1.5/],
    [{ openMs: -1 }, /openMs.*got -1/],
    [{ trialTimeoutMs: 0 }, /trialTimeoutMs.*got 0/],
    [{ trialTimeoutMs: Number.NaN }, /trialTimeoutMs.*got NaN/],
  ])('refuses the options %j with a RangeError naming them', (bad, message) => {
    expect(() => setUp(bad)).toThrow(RangeError)
    expect(() => setUp(bad)).toThrow(message)
  })
})

describe('requestOutcome', () => {
  const storage = new UnavailableError('storage failed to commit the write')

  it.each([
    ['a 200', { status: 200 }, 'success'],
    ['a 202', { status: 202 }, 'success'],
    ['a 500 without an error', { status: 500 }, 'backend_failure'],
    [
      'a driver error',
      { status: 500, error: new Error('SQLITE_BUSY') },
      'backend_failure',
    ],
    ['storage failing', { status: 503, error: storage }, 'backend_failure'],
    [
      'the internal HttpError',
      { status: 500, error: new HttpError('internal', 'x') },
      'backend_failure',
    ],
    [
      'a 400 from the edge',
      { status: 400, error: new HttpError('invalid_json', 'x') },
      'neutral',
    ],
    [
      'a validation error',
      {
        status: 400,
        error: new ValidationError([{ field: 'to', message: 'x' }]),
      },
      'neutral',
    ],
    [
      'a 404 from core',
      { status: 404, error: new NotFoundError('message', '9') },
      'neutral',
    ],
    [
      'its own or readiness 503s',
      { status: 503, error: new HttpError('unavailable', 'x') },
      'neutral',
    ],
    [
      'a success of a route that never reaches the backend',
      { status: 200, reachesBackend: false },
      'neutral',
    ],
    [
      'a backend failure of such a route',
      { status: 500, reachesBackend: false },
      'backend_failure',
    ],
    [
      'anything during shutdown',
      { status: 503, error: storage, shuttingDown: true },
      'neutral',
    ],
  ] as const)('classifies %s', (_, request, outcome) => {
    expect(requestOutcome(request)).toBe(outcome)
  })
})

describe('breakerOpenError', () => {
  it('is a 503 unavailable with Retry-After', () => {
    const error = breakerOpenError({ allowed: false, retryAfterSeconds: 7 })
    expect(error).toMatchObject({ status: 503, code: 'unavailable' })
    expect(error.message).toBe(
      'the service is failing in its backend; try again later',
    )
    expect(error.headers).toEqual({ 'Retry-After': '7' })
  })

  it('repeats the last failure the clients were told', () => {
    const error = breakerOpenError({
      allowed: false,
      retryAfterSeconds: 7,
      lastFailure: 'storage refuses writes; the server must be restarted',
    })
    expect(error.message).toBe(
      'the service is failing in its backend (last failure: storage refuses writes; the server must be restarted); try again later',
    )
  })
})

describe('the last failure an open breaker repeats', () => {
  const restart = 'storage refuses writes until the server is restarted'
  const lasting = () => new UnavailableError(restart, { lasting: true })

  function failWith(breaker: GlobalBreaker, failures: unknown[]): void {
    for (const error of failures) {
      breaker.settle(
        pass(breaker.admit()),
        requestOutcome({ status: 503, error }),
        failureMessage(error),
      )
    }
  }

  it("is the message of the last failure when it was core's lasting refusal of writes", () => {
    const { breaker } = setUp()
    failWith(breaker, [
      new Error('SQLITE_IOERR'),
      new UnavailableError('storage failed to answer'),
      lasting(),
    ])
    expect(breaker.admit()).toEqual({
      allowed: false,
      retryAfterSeconds: 10,
      lastFailure: restart,
    })
  })

  it("is never what one request was told about its own write, a driver error's text, a bug or an internal HttpError", () => {
    for (const last of [
      new UnavailableError(
        'storage committed the write but could not make it durable',
      ),
      new UnavailableError('storage failed to commit the write'),
      new Error('SQLITE_IOERR: disk I/O error at /secret/path'),
      new TypeError('cannot read x of undefined'),
      new HttpError('internal', 'internal error'),
    ]) {
      const { breaker } = setUp()
      failWith(breaker, [lasting(), restart, last])
      const refusal = breaker.admit()
      expect(refusal.allowed).toBe(false)
      expect(refusal).not.toHaveProperty('lastFailure')
    }
  })

  it('is forgotten after a success', () => {
    const { breaker, clock } = setUp()
    failWith(breaker, [lasting()])
    breaker.settle(pass(breaker.admit()), 'success')
    failWith(breaker, [new Error('a'), new Error('b'), new Error('c')])
    expect(breaker.admit()).not.toHaveProperty('lastFailure')
    // A trial refused for good is repeated from then on.
    clock.advance(OPEN_MS)
    failWith(breaker, [lasting()])
    expect(breaker.state).toBe('open')
    expect(breaker.admit()).toMatchObject({ lastFailure: restart })
  })
})
