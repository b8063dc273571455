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
  /** When everything was found done (clock ms), if it was. */
  doneAtMs: number | undefined

  /** True once every accepted request was found handled. */
  get complete(): boolean {
    return (
      this.dispatchDone === this.dispatchExpected &&
      this.threadDone === this.threadExpected
    )
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

/**
 * Polls the API until the server has dispatched every accepted send (its
 * message left `queued` and `sending`: `GET /api/messages/{id}`) and
 * threaded every accepted webhook (its conversation exists and its last
 * activity reached the webhook's timestamp: `GET /api/conversations`),
 * or until the timeout or Ctrl-C. A 429 while polling is waited out.
 */
export async function awaitServer(
  options: AwaitServerOptions,
): Promise<ServerProgress> {
  const progress = new ServerProgress()
  const { pendingSends, pendingThreads } = pendingWork(
    options.expectations,
    progress,
  )

  const deadline = options.now() + options.timeoutMs
  for (;;) {
    await checkSends(pendingSends, progress, options)
    await checkThreads(pendingThreads, progress, options)
    options.onRound?.(progress)
    if (progress.complete) {
      progress.doneAtMs = options.now()
      return progress
    }
    if (options.stop.stopped || options.now() >= deadline) return progress
    await options.stop.sleep(options.intervalMs)
  }
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
async function checkSends(
  pending: Set<string>,
  progress: ServerProgress,
  options: AwaitServerOptions,
): Promise<void> {
  const ids = [...pending].sort(byNumber)
  const patience = Math.max(8, options.concurrency)
  let next = 0
  let stillPending = 0
  const worker = async () => {
    while (next < ids.length && stillPending < patience) {
      if (options.stop.stopped) return
      const id = ids[next++] as string
      const status = await readStatus(id, options)
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

async function readStatus(
  id: string,
  options: AwaitServerOptions,
): Promise<string | undefined> {
  const response = await poll(`api/messages/${id}`, {}, options)
  const status = (response?.body as { status?: unknown } | undefined)?.status
  return typeof status === 'string' ? status : undefined
}

// Conversations come newest activity first: read pages until every
// pending webhook is found or the page reaches activity older than the
// run, which none of the run's conversations can have once threaded.
async function checkThreads(
  pending: Map<string, string>,
  progress: ServerProgress,
  options: AwaitServerOptions,
): Promise<void> {
  for (let page = 1; pending.size > 0 && !options.stop.stopped; page += 1) {
    const items = await readConversations(page, options)
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
  options: AwaitServerOptions,
): Promise<ConversationItem[] | undefined> {
  const query = { page, pageSize: conversationPageSize }
  const response = await poll('api/conversations', query, options)
  if (response === undefined) return undefined
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

// One GET; a 429 waits out its Retry-After (within the timeout) and
// counts as "not yet"; other failures end the wait with an error.
async function poll(
  path: string,
  searchParams: Record<string, string | number>,
  options: AwaitServerOptions,
): Promise<RawResponse | undefined> {
  const response = await options.client.exchange(path, {
    method: 'get',
    searchParams,
  })
  if (response.status === 200) return response
  if (response.status === 429 || response.status === 503) {
    const seconds = retryAfterSeconds(response.headers) ?? 1
    await options.stop.sleep(Math.min(seconds, 5) * 1000)
    return undefined
  }
  const code = (response.body as { code?: unknown } | undefined)?.code
  const why = typeof code === 'string' ? ` (${code})` : ''
  throw new CliError(
    'poll_failed',
    `polling GET /${path} got HTTP ${response.status}${why}; stopped waiting`,
  )
}
