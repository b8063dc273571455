import type { ChannelFamily } from '../messages/types.js'
import {
  type FaultRates,
  faultRateProblems,
  NO_FAULTS,
  randomSeed,
  scheduledFault,
} from './fault-schedule.js'
import type {
  OutboundMessage,
  Provider,
  ProviderOutcome,
  SendContext,
} from './provider.js'
import { checkKnownOptions } from '../util/known-options.js'

/** Options of {@link createMockProvider}. */
export interface MockProviderOptions {
  /** The family it serves. */
  family: ChannelFamily
  /** Its name. @default `mock-sms` or `mock-email` */
  name?: string
  /** Shares of calls that fail on purpose. @default no failures */
  faults?: Partial<FaultRates>
  /**
   * Seed of the fault schedule (a 32-bit unsigned integer); the same seed
   * gives the same outcome for the same message and attempt.
   * @default a random seed
   */
  seed?: number
  /**
   * Seconds a simulated 429 asks the caller to wait (`Retry-After`).
   * @default 1
   */
  retryAfterSecs?: number
}

/** The live settings of a mock provider. */
export interface MockProviderSettings extends FaultRates {
  /** Seed of the fault schedule now in use. */
  readonly seed: number
  /** Seconds a simulated 429 asks the caller to wait. */
  readonly retryAfterSecs: number
}

/**
 * A provider that delivers nothing. It fails on purpose with the configured
 * shares of timeouts (it hangs until the caller gives up), server errors
 * and 429s, drawn from a seeded schedule: the outcome of an attempt is a
 * pure function of (seed, family, message id, attempt). Every other call
 * succeeds with a made-up id (`<name>-<message id>-<attempt>`).
 */
export class MockProvider implements Provider {
  /** {@inheritDoc Provider.name} */
  readonly name: string
  /** {@inheritDoc Provider.family} */
  readonly family: ChannelFamily
  private current: MockProviderSettings

  constructor(options: MockProviderOptions) {
    this.family = options.family
    this.name = options.name ?? `mock-${options.family}`
    this.current = Object.freeze({
      ...NO_FAULTS,
      seed: options.seed ?? randomSeed(Math.random),
      retryAfterSecs: options.retryAfterSecs ?? 1,
    })
    this.configure(options.faults ?? {})
  }

  /** The settings in force. */
  settings(): MockProviderSettings {
    return this.current
  }

  /**
   * Changes some settings; the others stay. Throws a RangeError naming
   * what is wrong, changing nothing, when the result would be invalid.
   */
  configure(change: Partial<MockProviderSettings>): MockProviderSettings {
    const next = { ...this.current, ...withoutUndefined(change) }
    const problems = [...faultRateProblems(next), ...settingProblems(next)]
    if (problems.length > 0) {
      throw new RangeError(`mock provider ${this.name}: ${problems.join('; ')}`)
    }
    this.current = Object.freeze(next)
    return this.current
  }

  /** Answers from the fault schedule: a failure, or success with an id. */
  async send(
    message: OutboundMessage,
    context: SendContext,
  ): Promise<ProviderOutcome> {
    const settings = this.current
    switch (
      scheduledFault(settings, this.family, message.id, context.attempt)
    ) {
      case 'timeout':
        return hangUntilAborted(context.signal)
      case 'error':
        return { kind: 'transient', error: 'mock provider: 500 server error' }
      case 'rate_limit':
        return {
          kind: 'rate_limited',
          retryAfterMs: settings.retryAfterSecs * 1000,
          error: 'mock provider: 429 too many requests',
        }
      case 'none':
        return {
          kind: 'sent',
          providerMessageId: `${this.name}-${message.id}-${context.attempt}`,
        }
    }
  }
}

/** Creates a {@link MockProvider}. */
export function createMockProvider(options: MockProviderOptions): MockProvider {
  checkKnownOptions('createMockProvider', options, [
    'family',
    'name',
    'faults',
    'seed',
    'retryAfterSecs',
  ])
  return new MockProvider(options)
}

function settingProblems(settings: MockProviderSettings): string[] {
  const problems: string[] = []
  const { seed, retryAfterSecs } = settings
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    problems.push(
      `seed must be a whole number from 0 to 4294967295, got ${seed}`,
    )
  }
  if (
    !Number.isInteger(retryAfterSecs) ||
    retryAfterSecs < 0 ||
    retryAfterSecs > 3600
  ) {
    problems.push(
      `retryAfterSecs must be a whole number from 0 to 3600, got ${retryAfterSecs}`,
    )
  }
  return problems
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, item]) => item !== undefined),
  ) as Partial<T>
}

// A simulated timeout holds the call until the dispatcher's time limit
// aborts it, so it occupies a dispatch slot as a real hung call would.
function hangUntilAborted(signal: AbortSignal): Promise<ProviderOutcome> {
  const outcome: ProviderOutcome = {
    kind: 'transient',
    error: 'mock provider: no answer (simulated timeout)',
  }
  if (signal.aborted) return Promise.resolve(outcome)
  return new Promise((resolve) => {
    signal.addEventListener('abort', () => resolve(outcome), { once: true })
  })
}
