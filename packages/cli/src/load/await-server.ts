import type { ApiClient, RawResponse } from '../api/api-client.js'
import { retryAfterSeconds } from '../api/api-client.js'
import type { ConversationItem } from '../api/types.js'
import { CliError, UnexpectedResponseError } from '../errors.js'
import type { StopSignal } from '../stop-signal.js'
import type { Expectation } from './traffic.js'

/** How far the server got with the accepted requests of a run. */
export class ServerProgress {
  /** Sends accepted, and those whose message left `queued`/`sending`. */
  dispatchExpected = 0
  dispatchDone = 0
  /** The statuses the dispatched messages reached, by status. */
  readonly dispatchStatuses = new Map<string, number>()
  /** Webhooks accepted, and those found threaded into a conversation. */
  threadExpected = 0
  threadDone = 0
  /**
   * When the server's queues were last found empty (clock ms), from the
   * queue gauges of `/metrics`: every accepted request was then handled,
   * even those whose status was not read.
   */
  drainedAtMs: number | undefined
  /** When everything was found done (clock ms), if it was. */
  doneAtMs: number | undefined
  /** Polls the server refused with 429: the CLI's own, not the load's. */
  pollsThrottled = 0
  /** Why the wait ended early (the server went away, ...), if it did. */
  failure: CliError | undefined

  /** True once every accepted request was read handled. */
  get allRead(): boolean {
    return (
      this.dispatchDone === this.dispatchExpected &&
      this.threadDone === this.threadExpected
    )
  }

  /** True once every accepted request was handled (read, or drained). */
  get complete(): boolean {
    return this.allRead || this.drainedAtMs !== undefined
  }
}

/** How {@link awaitServer} polls. */
export interface AwaitServerOptions {
  client: ApiClient
  expectations: readonly Expectation[]
  /** Give up after this long, in ms. */
  timeoutMs: number
  /** The most requests in flight while polling. */
  concurrency: number
  /** Pause between rounds, in ms. */
  intervalMs: number
  /** The run's first timestamp: older conversations cannot hold its webhooks. */
  since: string
  stop: StopSignal
  /** A monotonic clock in milliseconds. */
  now: () => number
  /** Called after each round. */
  onRound?: (progress: ServerProgress) => void
}

// A message in one of these is still on its way to its provider.
const undispatched = new Set(['queued', 'sending'])

const conversationPageSize = 200

// While the queues are busy, the rate-limited API is read this often at
// most; the unlimited /metrics gauges are read every round.
const busyApiIntervalMs = 2000

/**
 * Waits until the server has handled every accepted request, or until the
 * timeout or Ctrl-C. Each round reads the queue gauges of `/metrics` (not
 * rate limited): once both durable queues are empty, every accepted send
 * has been dispatched and every webhook threaded. The API is read for the
 * statuses (`GET /api/messages/{id}`, `GET /api/conversations`) only when
 * the queues are empty, or every few seconds while they are not, or every
 * round when the server has no gauges; a 429 to such a read is counted
 * and waited out. A failure (the server went away) ends the wait: it is
 * kept in `failure` with what was learnt so far.
 */
export async function awaitServer(
  options: AwaitServerOptions,
): Promise<ServerProgress> {
  const progress = new ServerProgress()
  try {
    await pollRounds(progress, options)
  } catch (error) {
    if (!(error instanceof CliError)) throw error
    progress.failure = error
  }
  return progress
}

async function pollRounds(
  progress: ServerProgress,
  options: AwaitServerOptions,
): Promise<void> {
  const pending = pendingWork(options.expectations, progress)
  const deadline = options.now() + options.timeoutMs
  const context: ReadContext = {
    ...options,
    nextApiReadMs: -Infinity,
    throttledUntilMs: -Infinity,
    refused: false,
  }
  for (;;) {
    const drained = await readQueuesDrained(options)
    // The statuses are final once the queues drained: read them then,
    // busy interval or not (a Retry-After still holds), so that they are
    // reported, not left unread.
    const justDrained = drained === true && progress.drainedAtMs === undefined
    if (drained === true) progress.drainedAtMs ??= options.now()
    if (drained === false) progress.drainedAtMs = undefined
    const readNow = justDrained
      ? options.now() >= context.throttledUntilMs
      : options.now() >= context.nextApiReadMs
    if (readNow) {
      context.nextApiReadMs =
        options.now() + (drained === false ? busyApiIntervalMs : 0)
      context.refused = false
      await checkSends(pending.pendingSends, progress, context)
      if (!context.refused)
        await checkThreads(pending.pendingThreads, progress, context)
    }
    options.onRound?.(progress)
    if (progress.complete) {
      progress.doneAtMs = progress.drainedAtMs ?? options.now()
      return
    }
    if (options.stop.stopped || options.now() >= deadline) return
    await options.stop.sleep(options.intervalMs)
  }
}

// The queue gauges of the Prometheus form: true when both queues are
// empty, false when not, undefined when the server does not tell.
async function readQueuesDrained(
  options: AwaitServerOptions,
): Promise<boolean | undefined> {
  const response = await options.client.exchange('metrics', {
    method: 'get',
    searchParams: { format: 'prometheus' },
  })
  if (response.status !== 200) return undefined
  return queuesDrained(response.text)
}

/**
 * Reads `parley_queue_stats_up` and `parley_queue_depth` from the
 * Prometheus text of `/metrics`: true when the gauges were read and every
 * queue is empty, false when a row is pending or running, undefined when
 * the text has no readable gauges.
 */
export function queuesDrained(text: string): boolean | undefined {
  if (!/^parley_queue_stats_up(?:\{\})? 1\s*$/m.test(text)) return undefined
  const depths = [
    ...text.matchAll(/^parley_queue_depth\{[^}]*\} (\S+)\s*$/gm),
  ].map((match) => Number(match[1]))
  if (depths.length === 0) return undefined
  return depths.every((depth) => depth === 0)
}

/** Accepted sends by message id, and webhooks by conversation. */
interface PendingWork {
  pendingSends: Set<string>
  /** Conversation key -> the webhook's timestamp. */
  pendingThreads: Map<string, string>
}

function pendingWork(
  expectations: readonly Expectation[],
  progress: ServerProgress,
): PendingWork {
  const pending: PendingWork = {
    pendingSends: new Set(),
    pendingThreads: new Map(),
  }
  for (const expectation of expectations) {
    if (expectation.type === 'thread') {
      progress.threadExpected += 1
      pending.pendingThreads.set(threadKey(expectation), expectation.timestamp)
      continue
    }
    progress.dispatchExpected += 1
    if (expectation.messageId !== undefined) {
      pending.pendingSends.add(expectation.messageId)
    }
  }
  return pending
}

function threadKey(expectation: Expectation & { type: 'thread' }): string {
  return `${expectation.family} ${expectation.participants.join(' ')}`
}

// Messages are dispatched roughly in id order, so a round reads pending
// ids in order and ends early after a run of still-pending ones: the rest
// are very likely pending too, and reading them would only add load to the
// server being measured.
/** What one round's API reads need. */
interface ReadContext extends AwaitServerOptions {
  /**
   * The clock time of the next API read: a 429 or 503 moves it past its
   * Retry-After, and the round's reads stop; the gauges are still read.
   */
  nextApiReadMs: number
  /** The clock time a 429's or 503's Retry-After allows reads again. */
  throttledUntilMs: number
  /** Set when a read of this round was refused: the round reads no more. */
  refused: boolean
}

async function checkSends(
  pending: Set<string>,
  progress: ServerProgress,
  options: ReadContext,
): Promise<void> {
  const ids = [...pending].sort(byNumber)
  const patience = Math.max(8, options.concurrency)
  let next = 0
  let stillPending = 0
  const worker = async () => {
    while (next < ids.length && stillPending < patience && !options.refused) {
      if (options.stop.stopped) return
      const id = ids[next++] as string
      const status = await readStatus(id, progress, options)
      if (status === throttled) continue
      if (status === undefined || undispatched.has(status)) {
        stillPending += 1
        continue
      }
      stillPending = 0
      pending.delete(id)
      progress.dispatchDone += 1
      const seen = progress.dispatchStatuses.get(status) ?? 0
      progress.dispatchStatuses.set(status, seen + 1)
    }
  }
  const workers = Math.min(options.concurrency, ids.length)
  await Promise.all(Array.from({ length: workers }, worker))
}

function byNumber(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
}

const throttled = Symbol('throttled')

async function readStatus(
  id: string,
  progress: ServerProgress,
  options: ReadContext,
): Promise<string | typeof throttled | undefined> {
  const response = await poll(`api/messages/${id}`, {}, progress, options)
  if (response === throttled) return throttled
  const status = (response?.body as { status?: unknown } | undefined)?.status
  return typeof status === 'string' ? status : undefined
}

// Conversations come newest activity first: read pages until every
// pending webhook is found or the page reaches activity older than the
// run, which none of the run's conversations can have once threaded.
async function checkThreads(
  pending: Map<string, string>,
  progress: ServerProgress,
  options: ReadContext,
): Promise<void> {
  for (let page = 1; pending.size > 0 && !options.stop.stopped; page += 1) {
    const items = await readConversations(page, progress, options)
    if (items === undefined) return
    for (const item of items) {
      const key = `${item.channel} ${[item.participant_a, item.participant_b].sort().join(' ')}`
      const timestamp = pending.get(key)
      if (timestamp === undefined || item.last_activity_at < timestamp) continue
      pending.delete(key)
      progress.threadDone += 1
    }
    const last = items.at(-1)
    if (last === undefined || last.last_activity_at < options.since) return
  }
}

async function readConversations(
  page: number,
  progress: ServerProgress,
  options: ReadContext,
): Promise<ConversationItem[] | undefined> {
  const query = { page, pageSize: conversationPageSize }
  const response = await poll('api/conversations', query, progress, options)
  if (response === throttled) return undefined
  const items = (response.body as { items?: unknown } | undefined)?.items
  if (!Array.isArray(items)) {
    throw new UnexpectedResponseError(
      'api/conversations',
      response.status,
      'not a list',
    )
  }
  return items as ConversationItem[]
}

// One GET. A 429 (counted in `pollsThrottled`) or a 503 ends the round's
// reads until its Retry-After has passed: "not yet". Other failures end
// the wait with an error.
async function poll(
  path: string,
  searchParams: Record<string, string | number>,
  progress: ServerProgress,
  options: ReadContext,
): Promise<RawResponse | typeof throttled> {
  const response = await options.client.exchange(path, {
    method: 'get',
    searchParams,
  })
  if (response.status === 200) return response
  if (response.status === 429 || response.status === 503) {
    if (response.status === 429) progress.pollsThrottled += 1
    options.refused = true
    const seconds = retryAfterSeconds(response.headers) ?? 1
    options.throttledUntilMs = options.now() + seconds * 1000
    options.nextApiReadMs = Math.max(
      options.nextApiReadMs,
      options.throttledUntilMs,
    )
    return throttled
  }
  const code = (response.body as { code?: unknown } | undefined)?.code
  const why = typeof code === 'string' ? ` (${code})` : ''
  throw new CliError(
    'poll_failed',
    `polling GET /${path} got HTTP ${response.status}${why}; stopped waiting`,
  )
}
