import type { Kysely } from 'kysely'
import type { ResolvedConfig } from '../config.js'
import type { ParleyEvents } from '../events.js'
import type { NormalizedMessage } from '../messages/types.js'
import { backoffDelay } from '../resilience/backoff.js'
import type { GroupCommitter } from '../store/group-commit.js'
import { PreparedStatement } from '../store/prepared.js'
import {
  type ParleyDatabase,
  type ParleySchema,
  readId,
} from '../store/schema.js'
import { conversationLockKey } from '../store/lock-keys.js'
import {
  ConversationUpsertError,
  type Threaded,
  threadMessage,
} from '../store/threading.js'
import { type Clock, isoAfter, isoNow } from '../util/clock.js'
import type { TypedEmitter } from '../util/emitter.js'
import { errorMessage, type Logger } from '../util/logger.js'
import {
  claimDue,
  deadLetterRow,
  releaseClaims,
  rescheduleRow,
  type Settlement,
} from './queue-table.js'
import { WorkerLoop } from './worker-loop.js'

/** What the inbound worker needs. */
export interface InboundWorkerDeps {
  readonly db: ParleyDatabase
  readonly committer: GroupCommitter
  readonly config: ResolvedConfig
  readonly clock: Clock
  readonly random: () => number
  readonly events: TypedEmitter<ParleyEvents>
  readonly logger: Logger
}

interface ClaimedEvent {
  readonly id: string
  readonly providerMessageId: string
  /** JSON of the normalized message, parsed when the event is threaded. */
  readonly payload: string
  /** Attempts made before this claim. */
  readonly attempts: number
  /** performance.now() at claim time, for the latency gauge. */
  readonly claimedAt: number
  /** The payload parsed, once it was (for the batch's lock order). */
  readonly message?: NormalizedMessage
}

// One step's events and what threading each produced.
interface ThreadedBatch {
  readonly events: readonly ClaimedEvent[]
  readonly results: ReadonlyArray<Threaded | undefined>
}

interface EventRow {
  id: number | string
  provider_message_id: string
  payload: string
  attempts: number
}

/**
 * Threads queued inbound events into conversations: claims a batch, writes
 * every event's message in one transaction (each event alone when the
 * batch fails), marks them processed, and retries failures with backoff
 * until they are dead-lettered.
 */
export class InboundWorker {
  private readonly loop: WorkerLoop
  private readonly token = `inbound:${crypto.randomUUID()}`

  constructor(private readonly deps: InboundWorkerDeps) {
    this.loop = new WorkerLoop({
      name: 'inbound',
      pollIntervalMs: deps.config.pollIntervalMs,
      step: () => this.step(),
      logger: deps.logger,
    })
  }

  /** Starts claiming events. */
  start(): void {
    this.loop.start()
  }

  /** Looks for new work now instead of at the next poll. */
  wake(): void {
    this.loop.wake()
  }

  /** Stops after the batch in hand; gives back anything still held. */
  async stop(): Promise<void> {
    await this.loop.stop()
    try {
      await releaseClaims(
        this.deps.db.kysely,
        'inbound_events',
        this.token,
        isoNow(this.deps.clock),
      )
    } catch (error) {
      // Stopping must not fail on a database that does not answer: what
      // is still held comes back when its lease ends.
      this.deps.logger.warn('inbound.release_failed', {
        error: errorMessage(error),
      })
    }
  }

  /** Claims and threads one batch; true when the batch was full. */
  async step(): Promise<boolean> {
    let batch: ThreadedBatch
    try {
      batch = await this.claimAndThread()
    } catch (error) {
      return this.stepOneByOne(error)
    }
    const { events, results } = batch
    if (events.length === 0) return false
    this.deps.events.emit('inbound.claimed', { count: events.length })
    this.logClaimed(events)
    events.forEach((event, i) => this.processed(event, results[i]))
    return this.isFull(events)
  }

  private logClaimed(events: readonly ClaimedEvent[]): void {
    for (const event of events) {
      this.deps.logger.info('inbound.claimed', {
        event_id: event.id,
        provider_message_id: event.providerMessageId,
        attempts: event.attempts,
      })
    }
  }

  private isFull(events: readonly ClaimedEvent[]): boolean {
    return events.length === this.deps.config.inboundBatchSize
  }

  // The claim and the threading of the whole batch in one transaction: one
  // durable commit per batch instead of two (the claim's own commit cost as
  // much as threading a hundred events, docs/benchmarks.md). The rows stay
  // this worker's until the commit (SQLite has one writer; Postgres holds
  // them locked), so no other worker can take them meanwhile.
  private async claimAndThread(): Promise<ThreadedBatch> {
    return this.deps.db.writeTransaction(async (trx) => {
      const events = inLockOrder(await this.claimIn(trx))
      const results: Threaded[] = []
      for (const event of events) {
        results.push(await this.threadClaimed(trx, event))
      }
      return { events, results }
    })
  }

  // The batch failed and rolled back, its claim with it: claim again on
  // its own, then thread each event in a transaction of its own, so that
  // one bad event fails (and is retried) alone.
  private async stepOneByOne(batchError: unknown): Promise<boolean> {
    const events = await this.deps.db.writeTransaction((trx) =>
      this.claimIn(trx),
    )
    if (events.length > 0) {
      const cause = (batchError as { cause?: unknown } | null)?.cause
      this.deps.logger.warn('inbound.batch_failed', {
        size: events.length,
        error: errorMessage(batchError),
        // The driver's words, such as Postgres's "deadlock detected".
        ...(cause === undefined ? {} : { cause: errorMessage(cause) }),
      })
      this.deps.events.emit('inbound.claimed', { count: events.length })
      this.logClaimed(events)
    }
    for (const event of events) await this.processOne(event)
    return this.isFull(events)
  }

  private async claimIn(trx: Kysely<ParleySchema>): Promise<ClaimedEvent[]> {
    const { db, clock, config } = this.deps
    const rows = await claimDue<EventRow>(trx, {
      table: 'inbound_events',
      dialect: db.dialect,
      now: isoNow(clock),
      leaseUntil: isoAfter(clock, config.leaseMs),
      limit: config.inboundBatchSize,
      token: this.token,
    })
    const claimedAt = performance.now()
    return rows.map((row) => ({
      id: readId(row.id),
      providerMessageId: row.provider_message_id,
      payload: row.payload,
      attempts: Number(row.attempts),
      claimedAt,
    }))
  }

  private async processOne(event: ClaimedEvent): Promise<void> {
    try {
      const threaded = await this.deps.db.writeTransaction((trx) =>
        this.thread(trx, event),
      )
      this.processed(event, threaded)
    } catch (error) {
      await this.failed(event, error)
    }
  }

  // Returns undefined when the claim was lost (another worker took the
  // event after our lease expired): nothing is written then. Used when the
  // claim was committed in an earlier transaction.
  private async thread(
    trx: Kysely<ParleySchema>,
    event: ClaimedEvent,
  ): Promise<Threaded | undefined> {
    const held = await trx
      .updateTable('inbound_events')
      .set({ updated_at: isoNow(this.deps.clock) })
      .where('id', '=', Number(event.id))
      .where('state', '=', 'running')
      .where('claim_token', '=', this.token)
      .executeTakeFirst()
    if (Number(held.numUpdatedRows) !== 1) return undefined
    return this.threadClaimed(trx, event)
  }

  // Threads an event this transaction holds the claim of, and marks it
  // done with its message. In a batch the claim was made in the same
  // transaction, so it cannot have been lost: three statements per event,
  // no claim check.
  private async threadClaimed(
    trx: Kysely<ParleySchema>,
    event: ClaimedEvent,
  ): Promise<Threaded> {
    const now = isoNow(this.deps.clock)
    // Parsed here, not at claim time, so that one corrupt payload fails
    // (and is retried, then dead-lettered) alone instead of the batch.
    const message =
      event.message ?? (JSON.parse(event.payload) as NormalizedMessage)
    const threaded = await threadMessage(trx, message, {
      direction: 'inbound',
      status: 'received',
      now,
      snippetLength: this.deps.config.snippetLength,
      providerMessageId: event.providerMessageId,
    })
    await markDoneStatement.execute(trx, {
      id: Number(event.id),
      attempts: event.attempts + 1,
      now,
      messageId: Number(threaded.messageId),
    })
    return threaded
  }

  private processed(event: ClaimedEvent, threaded: Threaded | undefined): void {
    if (!threaded) return this.claimLost(event)
    const name = threaded.createdConversation ? 'created' : 'reused'
    this.deps.events.emit(`conversation.${name}`, {
      conversationId: threaded.conversationId,
    })
    const latencyUs = (performance.now() - event.claimedAt) * 1000
    this.deps.events.emit('inbound.processed', { latencyUs })
    this.deps.logger.info('inbound.processed', {
      event_id: event.id,
      message_id: threaded.messageId,
      conversation_id: threaded.conversationId,
    })
  }

  private claimLost(event: ClaimedEvent): void {
    this.deps.logger.warn('inbound.claim_lost', { event_id: event.id })
  }

  private async failed(event: ClaimedEvent, error: unknown): Promise<void> {
    const reason = errorMessage(error)
    if (error instanceof ConversationUpsertError) {
      this.deps.events.emit('conversation.failed', { error: reason })
    }
    const attempts = event.attempts + 1
    const settlement: Settlement = {
      table: 'inbound_events',
      id: event.id,
      token: this.token,
      now: isoNow(this.deps.clock),
      attempts,
    }
    if (attempts >= 1 + this.deps.config.maxRetries) {
      await this.deadLetter(event, settlement, reason)
    } else {
      await this.reschedule(event, settlement, reason)
    }
  }

  private async reschedule(
    event: ClaimedEvent,
    settlement: Settlement,
    reason: string,
  ): Promise<void> {
    const { config, random, clock } = this.deps
    const delay = backoffDelay(
      { baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs },
      settlement.attempts,
      random,
    )
    const runAt = isoAfter(clock, delay)
    const kept = await this.deps.committer.submit((trx) =>
      rescheduleRow(trx, settlement, runAt, reason),
    )
    // A lost claim is another worker's event now: nothing to count.
    if (!kept) return this.claimLost(event)
    this.deps.events.emit('inbound.error', { eventId: event.id, error: reason })
    this.deps.logger.warn('inbound.retry_scheduled', {
      event_id: event.id,
      attempts: settlement.attempts,
      run_at: runAt,
      error: reason,
    })
  }

  private async deadLetter(
    event: ClaimedEvent,
    settlement: Settlement,
    reason: string,
  ): Promise<void> {
    const kept = await this.deps.committer.submit((trx) =>
      deadLetterRow(trx, settlement, reason),
    )
    if (!kept) return this.claimLost(event)
    this.deps.events.emit('inbound.dead_letter', {
      eventId: event.id,
      error: reason,
    })
    this.deps.logger.error('inbound.dead_lettered', {
      event_id: event.id,
      attempts: settlement.attempts,
      error: reason,
    })
  }
}

// The batch sorted by the conversation each event threads into, so that
// two workers (of two instances on one Postgres) lock shared conversation
// rows in the same order and cannot deadlock. A payload that does not
// parse sorts first; it fails alone when the batch is retried one by one.
function inLockOrder(events: readonly ClaimedEvent[]): ClaimedEvent[] {
  const keyed = events.map(withLockKey)
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return keyed.map(({ event }) => event)
}

// The payload is parsed once here and kept with the event for threading.
function withLockKey(event: ClaimedEvent): {
  event: ClaimedEvent
  key: string
} {
  let message: NormalizedMessage
  try {
    message = JSON.parse(event.payload) as NormalizedMessage
  } catch {
    return { event, key: '' }
  }
  try {
    return { event: { ...event, message }, key: conversationLockKey(message) }
  } catch {
    return { event: { ...event, message }, key: '' }
  }
}

// Marks a threaded event done with its message, for every event (see
// PreparedStatement).
const markDoneStatement = new PreparedStatement(
  'mark inbound event done',
  (db, p: { id: number; attempts: number; now: string; messageId: number }) =>
    db
      .updateTable('inbound_events')
      .set({
        state: 'done',
        attempts: p.attempts,
        locked_until: null,
        claim_token: null,
        last_error: null,
        processed_at: p.now,
        updated_at: p.now,
        message_id: p.messageId,
      })
      .where('id', '=', p.id),
)
