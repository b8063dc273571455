import type { Kysely } from 'kysely'
import {
  type ParleyConfig,
  type ResolvedConfig,
  resolveConfig,
} from './config.js'
import { MemoryRateLimitStore } from './resilience/memory-rate-limit-store.js'
import type { RateLimitStore } from './resilience/rate-limit-store.js'
import {
  type RateLimitDecision,
  RateLimiter,
} from './resilience/rate-limiter.js'
import {
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  NoRouteError,
  NotFoundError,
  ParleyError,
  RateLimitedError,
  UnavailableError,
  ValidationError,
} from './errors.js'
import type { ParleyEvents } from './events.js'
import type { DeliveryStatusUpdate } from './messages/delivery-status.js'
import {
  type NormalizedInbound,
  validateInbound,
  validateSend,
} from './messages/validate.js'
import type {
  ChannelFamily,
  Conversation,
  Message,
  MessageDetail,
  NormalizedMessage,
  Page,
  PageRequest,
} from './messages/types.js'
import { Metrics, type MetricsSnapshot } from './metrics/metrics.js'
import type { Provider } from './providers/provider.js'
import { DispatchWorker } from './queue/dispatch-worker.js'
import { InboundWorker } from './queue/inbound-worker.js'
import { type WakeQueue, WakeSignals } from './queue/wake-signals.js'
import { ProviderHealthBoard } from './routing/provider-health.js'
import { ProviderRegistry } from './routing/provider-registry.js'
import {
  type DeadLetter,
  listDeadLetters,
  type QueueName,
  replayDeadLetter,
} from './store/dead-letters.js'
import {
  applyDeliveryReport,
  type DeliveryReportResult,
} from './store/delivery.js'
import { GroupCommitter } from './store/group-commit.js'
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  fingerprintOf,
  type IdempotencyToken,
  releaseIdempotencyKey,
} from './store/idempotency.js'
import { isSchemaCurrent, migrateToLatest, ping } from './store/migrations.js'
import {
  findConversation,
  findMessageDetail,
  listConversations,
  listMessages,
  type PageWindow,
} from './store/reads.js'
import type { ParleyDatabase, ParleySchema } from './store/schema.js'
import { ConversationUpsertError, threadMessage } from './store/threading.js'
import { type Clock, isoNow, systemClock } from './util/clock.js'
import { TypedEmitter } from './util/emitter.js'
import { errorMessage, type Logger, silentLogger } from './util/logger.js'

/** Everything {@link createParley} takes. */
export interface ParleyOptions {
  /** Storage, e.g. `openSqlite({ filename })` from `@parley/core/sqlite`. */
  db: ParleyDatabase
  /** Providers in priority order per family; a family may have none. */
  providers: readonly Provider[]
  /** Tuning; every field has a default. */
  config?: ParleyConfig
  /** Where events are logged. @default silent */
  logger?: Logger
  /** Source of time for scheduling. @default the system clock */
  clock?: Clock
  /** Source of randomness in [0, 1) for jitter. @default Math.random */
  random?: () => number
  /**
   * Bring the schema up to date before returning.
   * @default true
   */
  migrate?: boolean
  /**
   * Where rate-limit buckets live: a `DatabaseRateLimitStore` over `db`
   * makes the limits hold across every instance on the database.
   * @default an in-memory store of `rateLimitMaxKeys` buckets
   */
  rateLimitStore?: RateLimitStore
}

/** Options of {@link Parley.send}. */
export interface SendOptions extends IdempotencyOptions {
  /**
   * The family the request belongs to. When omitted it is read from the
   * request's `type` (`sms`/`mms` or `email`).
   */
  channel?: ChannelFamily
}

/** Options of {@link Parley.receive}. */
export interface ReceiveOptions extends IdempotencyOptions {
  /** The family whose webhook delivered the payload. */
  channel: ChannelFamily
}

/**
 * Idempotency of one call. With a key, a repeat of the call with the same
 * request (within `idempotencyTtlMs`) returns the first call's result with
 * `replayed: true` and stores nothing; a repeat with another request throws
 * {@link IdempotencyKeyReusedError}, and one while the first still runs
 * throws {@link IdempotencyInProgressError}.
 */
export interface IdempotencyOptions {
  /** 1 to 255 visible ASCII characters. */
  idempotencyKey?: string
  /**
   * What the key is scoped to (the server uses the route and API key).
   * @default the call and family, e.g. `send:sms`
   */
  idempotencyScope?: string
  /**
   * What the fingerprint covers, when it is not the request itself (the
   * server passes the raw body it received).
   * @default the request or payload
   */
  idempotencyBody?: unknown
}

/** An accepted outbound message. */
export interface SendResult {
  /** The stored message's id. */
  readonly id: string
  /** The id of the conversation it was threaded into. */
  readonly conversationId: string
  /** True when this is the stored result of an earlier identical call. */
  readonly replayed: boolean
  /** The sender's rate-limit state after this call. */
  readonly rateLimit: RateLimitDecision
}

/** An accepted inbound payload. */
export interface ReceiveResult {
  /** True when the provider's id was seen before: nothing new was stored. */
  readonly duplicate: boolean
  /** True when this is the stored result of an earlier identical call. */
  readonly replayed: boolean
}

/** Options of {@link Parley.stop}. */
export interface StopOptions {
  /**
   * How long running provider calls may take to finish, in milliseconds;
   * the rest are aborted and their jobs handed back to the queue.
   * @default 15000
   */
  graceMs?: number
}

/** What an HTTP edge reports to, and asks of, Parley. */
export interface IngressControls {
  /**
   * Takes a token from a client's bucket (`key` identifies the client,
   * e.g. its IP) under the API or the webhook limit. A refusal moves the
   * `rate_limited` counter.
   */
  limitClient(key: string, kind: 'api' | 'webhook'): Promise<RateLimitDecision>
  /** Counts a request the edge's global breaker short-circuited. */
  breakerShortCircuited(): void
  /** Counts a state change of the edge's global breaker. */
  breakerTransitioned(): void
}

/** Readiness of an instance. */
export interface ReadinessReport {
  readonly ready: boolean
  /** Why it is not ready, when it is not. */
  readonly reason?: string
}

/** A running Parley instance. */
export interface Parley {
  /** Validates, stores and queues an outbound message. */
  send(request: unknown, options?: SendOptions): Promise<SendResult>
  /** Validates and queues an inbound webhook payload for threading. */
  receive(payload: unknown, options: ReceiveOptions): Promise<ReceiveResult>
  /** Reads conversations. */
  readonly conversations: {
    /** Conversations by last activity, newest first. */
    list(request?: PageRequest): Promise<Page<Conversation>>
    /** One conversation's messages, oldest first. */
    messages(
      conversationId: string,
      request?: PageRequest,
    ): Promise<Page<Message>>
  }
  /** Reads messages. */
  readonly messages: {
    /** One message with its delivery details. */
    get(id: string): Promise<MessageDetail>
  }
  /**
   * Applies providers' delivery reports (from status callbacks). A report
   * never moves a message backwards or out of a terminal state; one for a
   * provider id not stored yet is kept and applied when it is.
   */
  reportDelivery(
    updates: readonly DeliveryStatusUpdate[],
  ): Promise<DeliveryReportResult[]>
  /** Jobs and events that failed for good. */
  readonly deadLetters: {
    /** One queue's dead letters, most recent first. */
    list(queue: QueueName, request?: PageRequest): Promise<Page<DeadLetter>>
    /**
     * Puts a dead letter back in its queue with a fresh attempt count.
     * Throws NotFoundError when the queue holds no dead letter with that id.
     */
    retry(queue: QueueName, id: string): Promise<void>
  }
  /** The live counters. */
  readonly metrics: { snapshot(): MetricsSnapshot }
  /**
   * What an HTTP edge in front of Parley uses: the per-client limits and
   * the counters of its own global breaker.
   */
  readonly ingress: IngressControls
  /** Starts the dispatch and inbound workers. */
  start(): Promise<void>
  /**
   * Stops accepting writes, stops the workers (finishing or handing back
   * what they hold) and waits for pending commits. Does not close `db`.
   * Resolves `true` when everything finished within the grace period.
   */
  stop(options?: StopOptions): Promise<boolean>
  /** Whether storage answers and the schema is current. */
  readiness(): Promise<ReadinessReport>
}

const DEFAULT_PAGE_SIZE = 50
const MAX_PAGE_SIZE = 200
// Keeps the row offset a safe integer on every backend.
const MAX_PAGE = 1_000_000_000

/**
 * Creates a Parley instance over `db`, running migrations first unless
 * told not to. Call `start()` to run the workers.
 *
 * @example
 * const parley = await createParley({ db: openSqlite({ filename: 'p.db' }),
 *   providers: [createMockProvider({ family: 'sms' })] })
 */
export async function createParley(options: ParleyOptions): Promise<Parley> {
  const config = resolveConfig(options.config)
  checkLeaseCoversCalls(config, options.providers)
  if (options.migrate !== false) await migrateToLatest(options.db)
  return new ParleyInstance(options, config)
}

class ParleyInstance implements Parley {
  readonly conversations: Parley['conversations']
  readonly messages: Parley['messages']
  readonly deadLetters: Parley['deadLetters']
  readonly metrics: Metrics
  readonly ingress: IngressControls

  private readonly db: ParleyDatabase
  private readonly registry: ProviderRegistry
  private readonly clock: Clock
  private readonly logger: Logger
  private readonly events: TypedEmitter<ParleyEvents>
  private readonly committer: GroupCommitter
  private readonly dispatch: DispatchWorker
  private readonly inbound: InboundWorker
  private readonly wakeSignals: WakeSignals
  private readonly limiters: {
    readonly sender: RateLimiter
    readonly api: RateLimiter
    readonly webhook: RateLimiter
  }
  private stopping = false
  private started = false

  constructor(
    options: ParleyOptions,
    private readonly config: ResolvedConfig,
  ) {
    this.db = options.db
    this.registry = new ProviderRegistry(options.providers)
    this.clock = options.clock ?? systemClock
    this.logger = options.logger ?? silentLogger
    this.events = new TypedEmitter((error) =>
      this.logger.error('events.listener_failed', {
        error: errorMessage(error),
      }),
    )
    this.metrics = new Metrics(this.clock)
    this.metrics.listen(this.events)
    this.committer = new GroupCommitter(this.db, config.maxWriteBatch)
    const deps = {
      db: this.db,
      committer: this.committer,
      config,
      clock: this.clock,
      random: options.random ?? Math.random,
      events: this.events,
      logger: this.logger,
    }
    const health = new ProviderHealthBoard({
      registry: this.registry,
      clock: this.clock,
      events: this.events,
      logger: this.logger,
      breaker: {
        threshold: config.breakerThreshold,
        openMs: config.breakerOpenMs,
      },
    })
    this.dispatch = new DispatchWorker({
      ...deps,
      registry: this.registry,
      health,
    })
    this.inbound = new InboundWorker(deps)
    this.wakeSignals = new WakeSignals({
      db: this.db,
      wake: {
        dispatch: () => this.dispatch.wake(),
        inbound: () => this.inbound.wake(),
      },
      logger: this.logger,
    })
    this.conversations = {
      list: (request) => this.listConversations(request),
      messages: (id, request) => this.listMessages(id, request),
    }
    this.messages = { get: (id) => this.getMessage(id) }
    this.deadLetters = {
      list: (queue, request) => this.listDeadLetters(queue, request),
      retry: (queue, id) => this.retryDeadLetter(queue, id),
    }
    this.limiters = createLimiters(config, this.clock, options, this.logger)
    this.ingress = {
      limitClient: (key, kind) => this.limitClient(key, kind),
      breakerShortCircuited: () => this.events.emit('ingress.breaker_open', {}),
      breakerTransitioned: () =>
        this.events.emit('ingress.breaker_transition', {}),
    }
  }

  private async limitClient(
    key: string,
    kind: 'api' | 'webhook',
  ): Promise<RateLimitDecision> {
    const decision = await this.limiters[kind].take(`${kind}:${key}`)
    if (!decision.allowed)
      this.events.emit('ingress.rate_limited', { scope: 'ip' })
    return decision
  }

  private async limitSender(participant: string): Promise<RateLimitDecision> {
    const decision = await this.limiters.sender.take(`sender:${participant}`)
    if (!decision.allowed) {
      this.events.emit('ingress.rate_limited', { scope: 'sender' })
      throw new RateLimitedError('from this sender', decision)
    }
    return decision
  }

  async reportDelivery(
    updates: readonly DeliveryStatusUpdate[],
  ): Promise<DeliveryReportResult[]> {
    this.assertOpen()
    const now = isoNow(this.clock)
    const results = await this.write(async (trx) => {
      const out: DeliveryReportResult[] = []
      for (const update of updates) {
        out.push(await applyDeliveryReport(trx, update, now))
      }
      return out
    })
    for (const [index, result] of results.entries()) {
      this.logger.info('delivery.report', {
        provider_message_id: updates[index]?.providerMessageId,
        status: updates[index]?.status,
        outcome: result.kind,
        message_id: result.kind === 'pending' ? undefined : result.messageId,
      })
    }
    return results
  }

  async send(request: unknown, options: SendOptions = {}): Promise<SendResult> {
    this.assertOpen()
    const family = options.channel ?? familyFromType(request)
    const message = validateSend(family, request, this.config)
    if (!this.registry.hasRoute(family)) {
      this.events.emit('routing.invalid', { family })
      throw new NoRouteError(family)
    }
    const rateLimit = await this.limitSender(message.fromParticipant)
    const outcome = await this.idempotently(
      request,
      options,
      `send:${family}`,
      (trx) => this.queueOutbound(trx, message),
      (threaded) => ({
        id: threaded.messageId,
        conversationId: threaded.conversationId,
      }),
    )
    if (outcome.replayed)
      return { ...outcome.result, replayed: true, rateLimit }
    const threaded = outcome.written
    this.emitThreaded(threaded.createdConversation, threaded.conversationId)
    this.workQueued('dispatch')
    return { ...outcome.result, replayed: false, rateLimit }
  }

  async receive(
    payload: unknown,
    options: ReceiveOptions,
  ): Promise<ReceiveResult> {
    this.assertOpen()
    const inbound = validateInbound(options.channel, payload, this.config)
    const outcome = await this.idempotently(
      payload,
      options,
      `receive:${options.channel}`,
      (trx) => this.queueInbound(trx, inbound),
      (inserted) => ({ duplicate: inserted === undefined }),
    )
    if (!outcome.replayed && !outcome.result.duplicate) {
      this.workQueued('inbound')
    }
    return { ...outcome.result, replayed: outcome.replayed }
  }

  // Runs `work` in a group commit. With an idempotency key, the key is
  // claimed first (its own commit), and the result is stored in the same
  // transaction as the work, so both commit or neither does; a failure
  // releases the key so that a repeat runs afresh.
  private async idempotently<W, R>(
    body: unknown,
    options: IdempotencyOptions,
    defaultScope: string,
    work: (trx: Kysely<ParleySchema>) => Promise<W>,
    toResult: (written: W) => R,
  ): Promise<
    { replayed: true; result: R } | { replayed: false; result: R; written: W }
  > {
    const key = options.idempotencyKey
    if (key === undefined) {
      const written = await this.write(work)
      return { replayed: false, result: toResult(written), written }
    }
    checkIdempotencyKey(key)
    const claim = await this.write((trx) =>
      claimIdempotencyKey(trx, {
        scope: options.idempotencyScope ?? defaultScope,
        key,
        fingerprint: fingerprintOf(options.idempotencyBody ?? body),
        now: this.clock.now(),
        ttlMs: this.config.idempotencyTtlMs,
        staleMs: IDEMPOTENCY_STALE_MS,
      }),
    )
    switch (claim.kind) {
      case 'replay':
        return { replayed: true, result: JSON.parse(claim.result) as R }
      case 'reused':
        throw new IdempotencyKeyReusedError()
      case 'in_progress':
        throw new IdempotencyInProgressError()
      case 'fresh':
        return this.runClaimed(claim.token, work, toResult)
    }
  }

  private async runClaimed<W, R>(
    token: IdempotencyToken,
    work: (trx: Kysely<ParleySchema>) => Promise<W>,
    toResult: (written: W) => R,
  ): Promise<{ replayed: false; result: R; written: W }> {
    try {
      const done = await this.write(async (trx) => {
        const written = await work(trx)
        const result = toResult(written)
        await completeIdempotencyKey(trx, token, JSON.stringify(result))
        return { written, result }
      })
      return { replayed: false, ...done }
    } catch (error) {
      await this.write((trx) => releaseIdempotencyKey(trx, token)).catch(
        () => undefined,
      )
      throw error
    }
  }

  private async queueInbound(
    trx: Kysely<ParleySchema>,
    inbound: NormalizedInbound,
  ): Promise<{ id: number | string } | undefined> {
    const now = isoNow(this.clock)
    const { message, providerMessageId } = inbound
    return trx
      .insertInto('inbound_events')
      .values({
        family: message.family,
        provider_message_id: providerMessageId,
        payload: JSON.stringify(message),
        state: 'pending',
        run_at: now,
        received_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['family', 'provider_message_id']).doNothing(),
      )
      .returning('id')
      .executeTakeFirst()
  }

  async start(): Promise<void> {
    this.assertOpen()
    if (this.started) return
    this.started = true
    // Listening first: work another instance queues from now on is seen.
    await this.wakeSignals.listen()
    this.dispatch.start()
    this.inbound.start()
  }

  async stop(options: StopOptions = {}): Promise<boolean> {
    this.stopping = true
    const graceMs = options.graceMs ?? 15_000
    const [dispatched] = await Promise.all([
      this.dispatch.stop(graceMs),
      this.inbound.stop(),
    ])
    await this.committer.drain()
    // What the workers handed back is due now: let the others take it.
    if (this.started) {
      this.wakeSignals.announce('dispatch')
      this.wakeSignals.announce('inbound')
    }
    await this.wakeSignals.close()
    return dispatched
  }

  async readiness(): Promise<ReadinessReport> {
    if (this.stopping) return { ready: false, reason: 'shutting down' }
    try {
      await ping(this.db)
      if (!(await isSchemaCurrent(this.db))) {
        return { ready: false, reason: 'database schema is not current' }
      }
      return { ready: true }
    } catch (error) {
      return { ready: false, reason: `database: ${errorMessage(error)}` }
    }
  }

  private async queueOutbound(
    trx: Kysely<ParleySchema>,
    message: NormalizedMessage,
  ) {
    const now = isoNow(this.clock)
    const threaded = await threadMessage(trx, message, {
      direction: 'outbound',
      status: 'queued',
      now,
      snippetLength: this.config.snippetLength,
    })
    await trx
      .insertInto('dispatch_jobs')
      .values({
        message_id: Number(threaded.messageId),
        family: message.family,
        state: 'pending',
        run_at: now,
        created_at: now,
        updated_at: now,
      })
      .execute()
    return threaded
  }

  private async write<T>(
    work: (trx: Kysely<ParleySchema>) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.committer.submit(work)
    } catch (error) {
      // Parley's own refusals (a lost idempotency key) pass through as is.
      if (error instanceof ParleyError) throw error
      if (error instanceof ConversationUpsertError) {
        this.events.emit('conversation.failed', {
          error: errorMessage(error.cause),
        })
      }
      this.logger.error('store.write_failed', { error: errorMessage(error) })
      throw new UnavailableError('storage failed to commit the write', {
        cause: error,
      })
    }
  }

  private emitThreaded(created: boolean, conversationId: string): void {
    const name = created ? 'conversation.created' : 'conversation.reused'
    this.events.emit(name, { conversationId })
  }

  private async listConversations(
    request?: PageRequest,
  ): Promise<Page<Conversation>> {
    const window = pageWindow(request)
    const { items, total } = await listConversations(this.db.kysely, window)
    return { items, total, ...window }
  }

  private async listMessages(
    id: string,
    request?: PageRequest,
  ): Promise<Page<Message>> {
    const window = pageWindow(request)
    const conversationId = parseId(id)
    const conversation =
      conversationId === undefined
        ? undefined
        : await findConversation(this.db.kysely, conversationId)
    if (!conversation || conversationId === undefined) {
      throw new NotFoundError('conversation', id)
    }
    const { items, total } = await listMessages(
      this.db.kysely,
      conversationId,
      window,
    )
    return { items, total, ...window }
  }

  private async getMessage(id: string): Promise<MessageDetail> {
    const messageId = parseId(id)
    const message =
      messageId === undefined
        ? undefined
        : await findMessageDetail(this.db.kysely, messageId)
    if (!message) throw new NotFoundError('message', id)
    return message
  }

  private async listDeadLetters(
    queue: QueueName,
    request?: PageRequest,
  ): Promise<Page<DeadLetter>> {
    checkQueue(queue)
    const window = pageWindow(request)
    const { items, total } = await listDeadLetters(
      this.db.kysely,
      queue,
      window,
    )
    return { items, total, ...window }
  }

  private async retryDeadLetter(queue: QueueName, id: string): Promise<void> {
    this.assertOpen()
    checkQueue(queue)
    const rowId = parseId(id)
    const now = isoNow(this.clock)
    const revived =
      rowId !== undefined &&
      (await this.write((trx) => replayDeadLetter(trx, queue, rowId, now)))
    if (!revived) throw new NotFoundError(`dead letter in ${queue}`, id)
    this.logger.info('dead_letter.replayed', { queue, id })
    this.workQueued(queue)
  }

  // Work was committed: this instance's worker looks at once, and so do
  // idle workers of other instances on the same database.
  private workQueued(queue: WakeQueue): void {
    if (queue === 'dispatch') this.dispatch.wake()
    else this.inbound.wake()
    this.wakeSignals.announce(queue)
  }

  private assertOpen(): void {
    if (this.stopping) throw new UnavailableError('Parley is shutting down')
  }
}

// A lease shorter than a provider call would let a second worker claim the
// job while the first call still runs, and send the message twice.
function checkLeaseCoversCalls(
  config: ResolvedConfig,
  providers: readonly Provider[],
): void {
  for (const provider of providers) {
    const callMs = config.providerTimeoutMs + (provider.extraTimeoutMs ?? 0)
    if (config.leaseMs < callMs + 1000) {
      throw new RangeError(
        `config.leaseMs must exceed the longest provider call (${provider.name}: ${callMs} ms) by at least 1000, got ${config.leaseMs}`,
      )
    }
  }
}

function createLimiters(
  config: ResolvedConfig,
  clock: Clock,
  options: ParleyOptions,
  logger: Logger,
) {
  // One store for every limit, keys prefixed, so that rateLimitMaxKeys
  // bounds them all together.
  const store =
    options.rateLimitStore ??
    new MemoryRateLimitStore({ maxKeys: config.rateLimitMaxKeys, logger })
  const limiter = (limitPerMinute: number) =>
    new RateLimiter({ limitPerMinute, store, clock })
  return {
    sender: limiter(config.rateLimitPerSenderPerMin),
    api: limiter(config.rateLimitPerIpPerMin),
    webhook: limiter(config.rateLimitWebhookPerIpPerMin),
  }
}

// An in-flight marker older than this belongs to a request whose process
// died: a repeat may take it over (DESIGN section 4).
const IDEMPOTENCY_STALE_MS = 30_000

function checkIdempotencyKey(key: string): void {
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ValidationError([
      {
        field: 'Idempotency-Key',
        message: 'must be 1 to 255 visible ASCII characters',
      },
    ])
  }
}

function checkQueue(queue: string): asserts queue is QueueName {
  if (queue !== 'dispatch' && queue !== 'inbound') {
    throw new ValidationError([
      { field: 'queue', message: 'must be "dispatch" or "inbound"' },
    ])
  }
}

function familyFromType(request: unknown): ChannelFamily {
  const type = (request as { type?: unknown } | null)?.type
  if (type === 'sms' || type === 'mms') return 'sms'
  if (type === 'email') return 'email'
  throw new ValidationError([
    {
      field: 'type',
      message: 'must be "sms", "mms" or "email" when no channel is given',
    },
  ])
}

// Ids are positive decimal integers; anything else names no row.
function parseId(id: string): number | undefined {
  if (!/^[1-9][0-9]{0,15}$/.test(id)) return undefined
  const value = Number(id)
  return Number.isSafeInteger(value) ? value : undefined
}

function pageWindow(request: PageRequest = {}): PageWindow {
  const page = request.page ?? 1
  const size = request.pageSize ?? 0
  const errors = []
  if (!Number.isSafeInteger(page) || page < 1 || page > MAX_PAGE) {
    errors.push({
      field: 'page',
      message: `must be a positive integer up to ${MAX_PAGE}`,
    })
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    errors.push({ field: 'pageSize', message: 'must be a positive integer' })
  }
  if (errors.length > 0) throw new ValidationError(errors)
  const pageSize =
    size === 0 ? DEFAULT_PAGE_SIZE : Math.min(size, MAX_PAGE_SIZE)
  return { page, pageSize }
}
