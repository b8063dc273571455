import type { ApiClient, RawResponse } from '../api/api-client.js'
import { CliError } from '../errors.js'
import type { StopSignal } from '../stop-signal.js'
import type { Expectation, LoadRequest } from './traffic.js'

/** What the requests of a run got, updated as answers come in. */
export class RequestTally {
  /** Requests started so far. */
  started = 0
  /** Requests that got an answer or failed to. */
  finished = 0
  accepted = 0
  /** Answers other than 202, by HTTP status. */
  readonly rejectedByStatus = new Map<number, number>()
  /** The first error of each rejected status, `code: message`. */
  readonly rejectionSamples = new Map<number, string>()
  /** Requests that got no answer (connection refused, timeout). */
  noAnswer = 0
  /** Why the first request without an answer got none. */
  noAnswerSample: string | undefined
  /** Milliseconds from start to answer, of every answered request. */
  readonly latenciesMs: number[] = []
  /** What to check later, for each accepted request. */
  readonly expectations: Expectation[] = []
  /** When the first request started and the last one finished (clock ms). */
  firstStartMs: number | undefined
  lastFinishMs: number | undefined

  /** Every request that was answered with something other than 202. */
  get rejected(): number {
    let sum = 0
    for (const count of this.rejectedByStatus.values()) sum += count
    return sum
  }
}

/** How a run sends its requests. */
export interface SendRequestsOptions {
  /** How many requests to send. */
  count: number
  /** The most requests in flight at once. */
  concurrency: number
  /** Starts per second to aim at; as fast as possible when absent. */
  ratePerSec?: number | undefined
  /** Makes request `index`. */
  request: (index: number) => LoadRequest
  /** Turns a request into what goes on the wire (signing webhooks). */
  prepare: (request: LoadRequest) => Promise<WireRequest>
  client: ApiClient
  /** Ctrl-C: no new request starts once it fires. */
  stop: StopSignal
  /** A monotonic clock in milliseconds. */
  now: () => number
  /** Called after each request finishes. */
  onFinish?: (tally: RequestTally) => void
}

/** A request as it goes on the wire. */
export interface WireRequest {
  path: string
  body: string
  headers: Record<string, string>
}

/**
 * Sends the requests with at most `concurrency` in flight. With a target
 * rate, request `i` starts no earlier than `i / rate` seconds after the
 * first; when answers are too slow for the rate, starts fall behind rather
 * than exceed the concurrency.
 */
export async function sendRequests(
  options: SendRequestsOptions,
): Promise<RequestTally> {
  const tally = new RequestTally()
  const startMs = options.now()
  let next = 0
  const worker = async () => {
    for (;;) {
      const index = next
      if (index >= options.count || options.stop.stopped) return
      next += 1
      await waitForTurn(index, startMs, options)
      if (options.stop.stopped) return
      await sendOne(options.request(index), tally, options)
      options.onFinish?.(tally)
    }
  }

  const workers = Math.min(options.concurrency, options.count)
  await Promise.all(Array.from({ length: workers }, worker))
  return tally
}

async function waitForTurn(
  index: number,
  startMs: number,
  options: SendRequestsOptions,
): Promise<void> {
  if (options.ratePerSec === undefined) return
  const dueMs = startMs + (index * 1000) / options.ratePerSec
  const waitMs = dueMs - options.now()
  if (waitMs > 0) await options.stop.sleep(waitMs)
}

async function sendOne(
  request: LoadRequest,
  tally: RequestTally,
  options: SendRequestsOptions,
): Promise<void> {
  const wire = await options.prepare(request)
  const startedMs = options.now()
  tally.started += 1
  tally.firstStartMs ??= startedMs

  const response = await exchange(wire, options.client)
  const finishedMs = options.now()
  tally.finished += 1
  tally.lastFinishMs = finishedMs
  if (typeof response === 'string') {
    tally.noAnswer += 1
    tally.noAnswerSample ??= response
    return
  }

  tally.latenciesMs.push(finishedMs - startedMs)
  record(request, response, tally)
}

// An answer, or why there was none.
async function exchange(
  wire: WireRequest,
  client: ApiClient,
): Promise<RawResponse | string> {
  try {
    return await client.exchange(wire.path, {
      method: 'post',
      body: wire.body,
      headers: wire.headers,
    })
  } catch (error) {
    if (error instanceof CliError) return error.message
    throw error
  }
}

function record(
  request: LoadRequest,
  response: RawResponse,
  tally: RequestTally,
): void {
  if (response.status === 202) {
    tally.accepted += 1
    tally.expectations.push(expectationOf(request, response))
    return
  }

  const { status } = response
  tally.rejectedByStatus.set(
    status,
    (tally.rejectedByStatus.get(status) ?? 0) + 1,
  )
  if (!tally.rejectionSamples.has(status)) {
    tally.rejectionSamples.set(status, describeRejection(response))
  }
}

function expectationOf(
  request: LoadRequest,
  response: RawResponse,
): Expectation {
  if (request.expectation.type !== 'dispatch') return request.expectation
  const id = (response.body as { id?: unknown } | undefined)?.id
  return typeof id === 'string'
    ? { type: 'dispatch', messageId: id }
    : request.expectation
}

function describeRejection(response: RawResponse): string {
  const { code, message } = (response.body ?? {}) as {
    code?: unknown
    message?: unknown
  }
  if (typeof code !== 'string') return `HTTP ${response.status}`
  return typeof message === 'string' ? `${code}: ${message}` : code
}
