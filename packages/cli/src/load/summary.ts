import type { MetricsBody } from '../api/types.js'
import { formatKeyValues, type KeyValue } from '../format/key-values.js'
import type { Colors } from '../output.js'
import type { ServerProgress } from './await-server.js'
import { summarizeLatencies, type LatencySummary } from './latency.js'
import type { RequestTally } from './send-requests.js'
import type { TrafficKind } from './traffic.js'

/** The summary of a load run, as `parley load --json` prints it. */
export interface LoadSummary {
  url: string
  traffic: TrafficKind[]
  count: number
  concurrency: number
  /** The target rate, in requests per second; `null`: as fast as possible. */
  target_rate_per_sec: number | null
  /** True when Ctrl-C cut the run short. */
  interrupted: boolean
  requests: {
    sent: number
    accepted: number
    rejected: number
    /** Answers other than 202, counted by HTTP status. */
    rejected_by_status: Record<string, number>
    /** The first error of each rejected status, `code: message`. */
    rejection_samples: Record<string, string>
    /** Requests that got no answer at all. */
    no_answer: number
    /** From the first request's start to the last one's answer. */
    duration_ms: number
    throughput_per_sec: number
  }
  /** Over every answered request; `null` when none was. */
  latency_ms: LatencySummary | null
  /** `null` with --no-wait. */
  server: {
    complete: boolean
    dispatch: {
      expected: number
      done: number
      statuses: Record<string, number>
    }
    threading: { expected: number; done: number }
    /** From the first request's start until all was found handled. */
    elapsed_ms: number | null
    /** From the last answer until all was found handled. */
    after_last_answer_ms: number | null
    /**
     * True when the server's queues were found empty (so every accepted
     * request was handled) before every status was read.
     */
    queues_drained: boolean
    /** Polls refused with 429: the CLI's own reads, not the load's. */
    polls_throttled: number
    /** Why the wait ended early (the server went away...), else `null`. */
    wait_error: string | null
  } | null
  /** How much each server counter moved during the run; `null` if unread. */
  counters: Record<string, number> | null
}

/** What the summary is made from. */
export interface SummaryInput {
  url: string
  traffic: TrafficKind[]
  count: number
  concurrency: number
  ratePerSec: number | undefined
  interrupted: boolean
  tally: RequestTally
  progress: ServerProgress | undefined
  metricsBefore: MetricsBody | undefined
  metricsAfter: MetricsBody | undefined
}

/** Builds the summary of a run. */
export function summarizeLoad(input: SummaryInput): LoadSummary {
  const { tally } = input
  const durationMs = (tally.lastFinishMs ?? 0) - (tally.firstStartMs ?? 0)
  return {
    url: input.url,
    traffic: input.traffic,
    count: input.count,
    concurrency: input.concurrency,
    target_rate_per_sec: input.ratePerSec ?? null,
    interrupted: input.interrupted,
    requests: {
      sent: tally.started,
      accepted: tally.accepted,
      rejected: tally.rejected,
      rejected_by_status: Object.fromEntries(tally.rejectedByStatus),
      rejection_samples: Object.fromEntries(tally.rejectionSamples),
      no_answer: tally.noAnswer,
      duration_ms: round(durationMs),
      throughput_per_sec:
        durationMs > 0 ? round((tally.finished * 1000) / durationMs) : 0,
    },
    latency_ms: summarizeLatencies(tally.latenciesMs),
    server: summarizeServer(input),
    counters: counterChanges(input.metricsBefore, input.metricsAfter),
  }
}

function summarizeServer(input: SummaryInput): LoadSummary['server'] {
  const { progress, tally } = input
  if (progress === undefined) return null
  const doneAt = progress.doneAtMs
  const drained = progress.drainedAtMs !== undefined
  const statuses = Object.fromEntries(progress.dispatchStatuses)
  const unread = progress.dispatchExpected - progress.dispatchDone
  if (drained && unread > 0) statuses.unread = unread
  return {
    complete: progress.complete,
    dispatch: {
      expected: progress.dispatchExpected,
      done: drained ? progress.dispatchExpected : progress.dispatchDone,
      statuses,
    },
    threading: {
      expected: progress.threadExpected,
      done: drained ? progress.threadExpected : progress.threadDone,
    },
    elapsed_ms:
      doneAt === undefined ? null : round(doneAt - (tally.firstStartMs ?? 0)),
    after_last_answer_ms:
      doneAt === undefined ? null : round(doneAt - (tally.lastFinishMs ?? 0)),
    queues_drained: drained && !progress.allRead,
    polls_throttled: progress.pollsThrottled,
    wait_error: progress.failure?.message ?? null,
  }
}

// Gauges and the clock are not counters: their difference means nothing.
const notCounters = new Set([
  'ts_unix_ms',
  'worker_latency_avg_us',
  'worker_latency_max_us',
])

function counterChanges(
  before: MetricsBody | undefined,
  after: MetricsBody | undefined,
): Record<string, number> | null {
  if (before === undefined || after === undefined) return null
  const changes: Record<string, number> = {}
  for (const [name, value] of Object.entries(after)) {
    const previous = before[name]
    if (notCounters.has(name) || typeof previous !== 'number') continue
    if (typeof value === 'number' && value !== previous) {
      changes[name] = value - previous
    }
  }
  return changes
}

function round(value: number): number {
  return Math.round(value * 10) / 10
}

/** The summary as people read it: sections of aligned lines. */
export function formatLoadSummary(
  summary: LoadSummary,
  colors: Colors,
): string {
  const sections = [
    section('requests', requestLines(summary, colors), colors),
    section('latency', latencyLines(summary.latency_ms), colors),
  ]
  if (summary.server !== null) {
    sections.push(
      section('server', serverLines(summary.server, colors), colors),
    )
  }
  if (summary.counters !== null && Object.keys(summary.counters).length > 0) {
    const lines = Object.entries(summary.counters).map(([label, change]) => ({
      label,
      value: `+${change}`,
    }))
    sections.push(
      section('server counters, change during the run', lines, colors),
    )
  }
  return `${heading(summary, colors)}\n\n${sections.join('\n\n')}\n`
}

// Two lines, so that neither wraps on a usual terminal: what was sent
// where, then its kinds and its pace.
function heading(summary: LoadSummary, colors: Colors): string {
  const pace =
    summary.target_rate_per_sec === null
      ? `as fast as ${summary.concurrency} concurrent requests go`
      : `${summary.target_rate_per_sec}/s, up to ${summary.concurrency} at once`
  const cut = summary.interrupted ? colors.yellow(' (interrupted)') : ''
  const title = `parley load: ${summary.count} requests to ${summary.url}`
  return `${colors.bold(title)}${cut}\n${summary.traffic.join(', ')}; ${pace}`
}

function section(title: string, lines: KeyValue[], colors: Colors): string {
  return `${colors.bold(title.toUpperCase())}\n${formatKeyValues(lines, colors.dim)}`
}

function requestLines(summary: LoadSummary, colors: Colors): KeyValue[] {
  const requests = summary.requests
  const seconds = (requests.duration_ms / 1000).toFixed(2)
  const rejected = Object.entries(requests.rejected_by_status).map(
    ([status, count]) =>
      `${status} × ${count} (${requests.rejection_samples[status] ?? ''})`,
  )
  const lines: KeyValue[] = [
    { label: 'sent', value: `${requests.sent} in ${seconds} s` },
    {
      label: 'throughput',
      value: `${requests.throughput_per_sec} req/s${belowTarget(summary)}`,
    },
    {
      label: 'accepted',
      value: String(requests.accepted),
      style: colors.green,
    },
    {
      label: 'rejected',
      value: [String(requests.rejected), ...rejected].join(', '),
      style: requests.rejected === 0 ? undefined : colors.red,
    },
  ]
  if (requests.no_answer > 0) {
    lines.push({
      label: 'no answer',
      value: String(requests.no_answer),
      style: colors.red,
    })
  }
  return lines
}

// Starts wait for free slots, so a rate the concurrency cannot carry is
// missed: the run then lasts longer than its schedule plus its slowest
// answer. Say which knob to turn.
function belowTarget(summary: LoadSummary): string {
  const target = summary.target_rate_per_sec
  const { sent, duration_ms: durationMs } = summary.requests
  if (target === null || summary.interrupted || sent < 2) return ''
  const scheduleMs = ((sent - 1) / target) * 1000
  const slowestMs = summary.latency_ms?.max ?? 0
  if (durationMs <= (scheduleMs + slowestMs) * 1.1) return ''
  return `, below the target ${target}/s: raise --concurrency`
}

function latencyLines(latency: LatencySummary | null): KeyValue[] {
  if (latency === null) return [{ label: 'no answers', value: '' }]
  return (['p50', 'p90', 'p99', 'max'] as const).map((label) => ({
    label,
    value: `${latency[label].toFixed(2)} ms`,
  }))
}

function serverLines(
  server: NonNullable<LoadSummary['server']>,
  colors: Colors,
): KeyValue[] {
  const statuses = Object.entries(server.dispatch.statuses)
    .map(([status, count]) => `${status} ${count}`)
    .join(', ')
  const done =
    server.elapsed_ms === null
      ? {
          value:
            server.wait_error === null
              ? 'not all handled before the wait ended'
              : 'unknown: the wait ended early (see the error)',
          style: colors.red,
        }
      : {
          value:
            `${(server.elapsed_ms / 1000).toFixed(2)} s after the first ` +
            `request, ${((server.after_last_answer_ms ?? 0) / 1000).toFixed(2)} s ` +
            'after the last answer',
        }
  return [
    {
      label: 'dispatched',
      value:
        `${server.dispatch.done} of ${server.dispatch.expected}` +
        (statuses === '' ? '' : ` (${statuses})`),
    },
    {
      label: 'threaded',
      value: `${server.threading.done} of ${server.threading.expected}`,
    },
    { label: 'all handled', ...done },
    ...pollingLines(server, colors),
  ]
}

// Why the statuses may be partial or the wait slow: the CLI's own reads
// were refused (they share the client's rate limit with the load).
function pollingLines(
  server: NonNullable<LoadSummary['server']>,
  colors: Colors,
): KeyValue[] {
  const lines: KeyValue[] = []
  if (server.queues_drained) {
    lines.push({
      label: 'found by',
      value: "the server's queue gauges (empty); statuses read in part",
    })
  }
  if (server.polls_throttled > 0) {
    lines.push({
      label: 'polling',
      value:
        `${server.polls_throttled} of the CLI's own reads got 429 ` +
        '(its rate limit, not the load)',
      style: colors.yellow,
    })
  }
  return lines
}
