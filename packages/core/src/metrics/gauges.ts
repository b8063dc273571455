import type { BreakerStateName } from '../resilience/circuit-breaker.js'
import type { ProviderBreakerState } from '../routing/provider-health.js'
import type { QueueName } from '../store/dead-letters.js'
import type { QueueStats } from '../store/queue-stats.js'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/logger.js'
import type { MetricFamily, MetricSample } from './exposition.js'

/** Where the gauges are read from at scrape time. */
export interface GaugeSources {
  /** Every provider's breaker state (read without moving it). */
  readonly breakers: () => readonly ProviderBreakerState[]
  /**
   * One queue's counts, from storage; the read should give up after
   * `timeoutMs` (the scrape stops waiting for it then).
   */
  readonly queue: (queue: QueueName, timeoutMs: number) => Promise<QueueStats>
  /**
   * How long a scrape waits for the queue counts.
   * @default 2000
   */
  readonly timeoutMs?: number
  /** Now, in ms since the epoch. */
  readonly now: () => number
  readonly logger: Logger
}

const BREAKER_STATES: readonly BreakerStateName[] = [
  'closed',
  'open',
  'half_open',
]
const QUEUES: readonly QueueName[] = ['dispatch', 'inbound']

/**
 * Reads the gauges the JSON lacks: each provider's breaker state and, from
 * storage, each queue's depth, oldest pending age and dead letters. When
 * storage does not answer, the queue gauges are left out and
 * `parley_queue_stats_up` reads 0, so a scrape still gets the counters.
 */
export async function readGauges(
  sources: GaugeSources,
): Promise<MetricFamily[]> {
  const breakers = breakerFamily(sources.breakers())
  const timeoutMs = sources.timeoutMs ?? QUEUE_STATS_TIMEOUT_MS
  try {
    const stats = await withinTime(
      Promise.all(QUEUES.map((queue) => sources.queue(queue, timeoutMs))),
      timeoutMs,
    )
    return [breakers, ...queueFamilies(stats, sources.now()), statsUp(1)]
  } catch (error) {
    sources.logger.warn('metrics.queue_stats_failed', {
      error: errorMessage(error),
    })
    return [breakers, statsUp(0)]
  }
}

// As long as readiness waits for the database.
const QUEUE_STATS_TIMEOUT_MS = 2000

// The work's result, or a rejection once it took longer than `ms` (the
// work itself is left to end, or be cancelled, on its own).
async function withinTime<T>(work: Promise<T>, ms: number): Promise<T> {
  work.catch(() => undefined)
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

// One series per state, 1 for the state the breaker is in: a state set,
// which alerts and graphs read without knowing a numeric code.
function breakerFamily(states: readonly ProviderBreakerState[]): MetricFamily {
  const name = 'parley_provider_breaker_state'
  const samples = states.flatMap(({ provider, family, state }) =>
    BREAKER_STATES.map((candidate) => ({
      name,
      labels: { family, provider, state: candidate },
      value: candidate === state ? 1 : 0,
    })),
  )
  return {
    name,
    type: 'gauge',
    help: 'Provider breaker state: 1 for the state each breaker is in, else 0.',
    samples,
  }
}

function queueFamilies(
  stats: readonly QueueStats[],
  now: number,
): MetricFamily[] {
  const gauge = (
    name: string,
    help: string,
    samples: MetricSample[],
  ): MetricFamily => ({ name, type: 'gauge', help, samples })
  return [
    gauge(
      'parley_queue_depth',
      'Rows in a durable queue not yet finished, by state (pending or running).',
      stats.flatMap((s) => [
        depthSample(s.queue, 'pending', s.pending),
        depthSample(s.queue, 'running', s.running),
      ]),
    ),
    gauge(
      'parley_queue_oldest_pending_age_seconds',
      'How long the oldest due row of a queue has waited past its due time; 0 when none is due.',
      stats.map((s) => ({
        name: 'parley_queue_oldest_pending_age_seconds',
        labels: { queue: s.queue },
        value: pendingAgeSeconds(s.oldestPendingRunAt, now),
      })),
    ),
    gauge(
      'parley_queue_dead_letters',
      'Rows of a queue that failed for good and wait in the dead letters.',
      stats.map((s) => ({
        name: 'parley_queue_dead_letters',
        labels: { queue: s.queue },
        value: s.dead,
      })),
    ),
  ]
}

function depthSample(
  queue: QueueName,
  state: 'pending' | 'running',
  value: number,
): MetricSample {
  return { name: 'parley_queue_depth', labels: { queue, state }, value }
}

// A pending row whose run_at is still ahead (a retry waiting for its
// backoff) has not waited yet; the oldest run_at decides, since a later
// one cannot be older.
function pendingAgeSeconds(runAt: string | null, now: number): number {
  if (runAt === null) return 0
  return Math.max(0, now - Date.parse(runAt)) / 1000
}

function statsUp(value: 0 | 1): MetricFamily {
  return {
    name: 'parley_queue_stats_up',
    type: 'gauge',
    help: 'Whether the queue gauges of this scrape could be read from storage (1) or not (0).',
    samples: [{ name: 'parley_queue_stats_up', labels: {}, value }],
  }
}
