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
  type FieldError,
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
import type { MetricFamily } from './metrics/exposition.js'
import { readGauges } from './metrics/gauges.js'
import { Metrics, type MetricsSnapshot } from './metrics/metrics.js'
import type { Provider } from './providers/provider.js'
import { DispatchWorker } from './queue/dispatch-worker.js'
import { InboundWorker } from './queue/inbound-worker.js'
import { RetentionWorker } from './queue/retention-worker.js'
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
  reportOrder,
  type DeliveryReportResult,
} from './store/delivery.js'
import { GroupCommitter } from './store/group-commit.js'
import { DurabilityError } from './store/wal-sync.js'
import { isStorageFault } from './store/sqlite-file.js'
import { PreparedStatement } from './store/prepared.js'
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  fingerprintOf,
  type IdempotencyToken,
  releaseIdempotencyKey,
} from './store/idempotency.js'
import { isSchemaCurrent, migrateToLatest, ping } from './store/migrations.js'
import { boundedRead } from './store/bounded-read.js'
import { readQueueStats } from './store/queue-stats.js'
import {
  findConversation,
  findMessageDetail,
  listConversations,
  listMessages,
  type PageWindow,
} from './store/reads.js'
import type { ParleyDatabase, ParleySchema } from './store/schema.js'
import {
  conversationLockKey,
  idempotencyLockKey,
  inboundLockKey,
} from './store/lock-keys.js'
import { ConversationUpsertError, threadMessage } from './store/threading.js'
import { type Clock, isoNow, systemClock } from './util/clock.js'
import { TypedEmitter } from './util/emitter.js'
import { checkKnownOptions } from './util/known-options.js'
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

/** What ties a call's log lines to whatever asked for it. */
export interface TraceOptions {
  /**
   * Written as `request_id` on every log line of the call (the server
   * passes the HTTP request's `X-Request-Id`).
   */
  requestId?: string
}

/** Options of {@link Parley.send}. */
export interface SendOptions extends IdempotencyOptions, TraceOptions {
  /**
   * The family the request belongs to. When omitted it is read from the
   * request's `type` (`sms`/`mms` or `email`).
   */
  channel?: ChannelFamily
}

/** Options of {@link Parley.receive}. */
export interface ReceiveOptions extends IdempotencyOptions, TraceOptions {
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

/** Options of {@link Parley.readiness}. */
export interface ReadinessOptions {
  /**
   * How long the database may take to answer, in ms, 1 to 60000; a check
   * that takes longer reports not ready (it does not wait for a database
   * that stopped answering).
   * @default 2000
   */
  timeoutMs?: number
}

/** Readiness of an instance. */
export interface ReadinessReport {
  /** Whether the instance can take requests now. */
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
    options?: TraceOptions,
  ): Promise<DeliveryReportResult[]>
  /** Jobs and events that failed for good. */
  readonly deadLetters: {
    /** One queue's dead letters, most recent first. */
    list(queue: QueueName, request?: PageRequest): Promise<Page<DeadLetter>>
    /**
     * Puts a dead letter back in its queue with a fresh attempt count.
     * Throws NotFoundError when the queue holds no dead letter with that id.
     */
    retry(queue: QueueName, id: string, options?: TraceOptions): Promise<void>
  }
  /** The live metrics. */
  readonly metrics: {
    /** The JSON document's counters and gauges, summed over labels. */
    snapshot(): MetricsSnapshot
    /**
     * The same counters with their provider, family and scope labels,
     * plus the gauges (breaker states; queue depths, ages and dead letters
     * read from storage), for `formatPrometheusText`.
     */
    collect(): Promise<MetricFamily[]>
  }
  /**
   * What an HTTP edge in front of Parley uses: the per-client limits and
   * the counters of its own global breaker.
   */
  readonly ingress: IngressControls
  /** Starts the dispatch, inbound and retention workers. */
  start(): Promise<void>
  /**
   * Stops accepting writes, stops the workers (finishing or handing back
   * what they hold) and waits for pending commits. Does not close `db`.
   * Resolves `true` when everything finished within the grace period.
   */
  stop(options?: StopOptions): Promise<boolean>
  /**
   * Whether storage answers (a real round trip, within `timeoutMs`) and
   * the schema is current; not ready once stopping.
   */
  readiness(options?: ReadinessOptions): Promise<ReadinessReport>
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
  checkParleyOptions(options)
  const config = resolveConfig(options.config)
  checkLeaseCoversCalls(config, options.providers)
  if (options.migrate !== false) await migrateToLatest(options.db)
  return new ParleyInstance(options, config)
}

// What TypeScript checks, checked again for JavaScript callers, so that a
// wrong call fails here naming the option, not later in a worker.
function checkParleyOptions(options: ParleyOptions): void {
  checkKnownOptions('createParley', options, [
    'db',
    'providers',
    'config',
    'logger',
    'clock',
    'random',
    'migrate',
    'rateLimitStore',
  ])
  const db = options.db as Partial<ParleyDatabase> | null | undefined
  if (typeof db?.writeTransaction !== 'function' || db.kysely === undefined) {
    throw new TypeError(
      'createParley: db must be a ParleyDatabase (from openSqlite, openPostgres or openNodeSqlite)',
    )
  }
  if (!Array.isArray(options.providers)) {
    throw new TypeError('createParley: providers must be an array of providers')
  }
  options.providers.forEach(checkProvider)
}

function checkProvider(provider: unknown, index: number): void {
  const p = provider as Partial<Provider> | null | undefined
  const at = `createParley: providers[${index}]`
  if (typeof p?.name !== 'string' || p.name === '') {
    throw new TypeError(`${at}.name must be a non-empty string`)
  }
  if (p.family !== 'sms' && p.family !== 'email') {
    throw new RangeError(
      `${at}.family must be "sms" or "email", got ${JSON.stringify(p.family)}`,
    )
  }
  if (typeof p.send !== 'function') {
    throw new TypeError(`${at}.send must be a function`)
  }
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
  private readonly retention: RetentionWorker
  private readonly wakeSignals: WakeSignals
  private readonly limiters: {
    readonly sender: RateLimiter
    readonly api: RateLimiter
    readonly webhook: RateLimiter
  }
  private stopping = false
  private started = false
  // The file check's failure last logged, while it lasts.
  private fileProblemLogged: string | undefined
  // When the database file was last checked before a write, and what was
  // wrong with it then.
  private fileCheck: {
    at: number
    problem: string | undefined
    // The problem is a StorageFault: writes are refused while it lasts.
    lasting: boolean
  } = { at: -Infinity, problem: undefined, lasting: false }
  // The readiness check under way, which concurrent probes share.
  private readinessCheck: Promise<ReadinessReport> | undefined

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
    this.metrics = new Metrics(this.clock, {
      providers: options.providers,
      gauges: () =>
        readGauges({
          breakers: () => health.breakerStates(),
          queue: (queue, timeoutMs) =>
            boundedRead(this.db, timeoutMs, (kysely) =>
              readQueueStats(kysely, queue),
            ),
          now: () => this.clock.now(),
          logger: this.logger,
        }),
    })
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
    this.dispatch = new DispatchWorker({
      ...deps,
      registry: this.registry,
      health,
    })
    this.inbound = new InboundWorker(deps)
    this.retention = new RetentionWorker(deps)
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
      retry: (queue, id, options) => this.retryDeadLetter(queue, id, options),
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
    const decision = await this.read(() =>
      this.limiters[kind].take(`${kind}:${key}`),
    )
    if (!decision.allowed)
      this.events.emit('ingress.rate_limited', { scope: 'ip' })
    return decision
  }

  private async limitSender(participant: string): Promise<RateLimitDecision> {
    const decision = await this.read(() =>
      this.limiters.sender.take(`sender:${participant}`),
    )
    if (!decision.allowed) {
      this.events.emit('ingress.rate_limited', { scope: 'sender' })
      throw new RateLimitedError('from this sender', decision)
    }
    return decision
  }

  async reportDelivery(
    updates: readonly DeliveryStatusUpdate[],
    options: TraceOptions = {},
  ): Promise<DeliveryReportResult[]> {
    this.assertOpen()
    const now = isoNow(this.clock)
    const results = await this.write(
      async (trx) => {
        const out: DeliveryReportResult[] = []
        for (const index of reportOrder(updates)) {
          out[index] = await applyDeliveryReport(
            trx,
            this.db.dialect,
            updates[index]!,
            now,
          )
        }
        return out
      },
      // Its rows are locked in its own order (see reportOrder), which one
      // lock key cannot place among the rest of a batch.
      { requestId: options.requestId, alone: true },
    )
    for (const [index, result] of results.entries()) {
      this.logger.info('delivery.report', {
        request_id: options.requestId,
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
    checkOptionsObject(options)
    const family =
      options.channel === undefined
        ? familyFromType(request)
        : checkChannel(options.channel)
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
      {
        lockKey: conversationLockKey(message),
        write: (trx) => this.queueOutbound(trx, message),
      },
      (threaded) => ({
        id: threaded.messageId,
        conversationId: threaded.conversationId,
      }),
    )
    this.logAccepted(message, outcome.result, outcome.replayed, options)
    if (outcome.replayed)
      return { ...outcome.result, replayed: true, rateLimit }
    const threaded = outcome.written
    this.emitThreaded(threaded.createdConversation, threaded.conversationId)
    this.workQueued('dispatch')
    return { ...outcome.result, replayed: false, rateLimit }
  }

  // The first line of a message's trail (its worker lines follow with the
  // same message_id). Addresses are personal data: debug level only; the
  // body never, only its length.
  private logAccepted(
    message: NormalizedMessage,
    result: { id: string; conversationId: string },
    replayed: boolean,
    options: TraceOptions,
  ): void {
    const ids = { request_id: options.requestId, message_id: result.id }
    this.logger.info('message.accepted', {
      ...ids,
      conversation_id: result.conversationId,
      channel: message.channel,
      body_length: message.body.length,
      attachments: message.attachments.length,
      replayed,
    })
    this.logger.debug('message.addresses', {
      ...ids,
      from: message.from,
      to: message.to,
    })
  }

  async receive(
    payload: unknown,
    options: ReceiveOptions,
  ): Promise<ReceiveResult> {
    this.assertOpen()
    checkOptionsObject(options)
    const inbound = validateInbound(
      checkChannel(options.channel),
      payload,
      this.config,
    )
    const outcome = await this.idempotently(
      payload,
      options,
      `receive:${options.channel}`,
      {
        lockKey: inboundLockKey(
          inbound.message.family,
          inbound.providerMessageId,
        ),
        write: (trx) => this.queueInbound(trx, inbound),
      },
      (inserted) => ({ duplicate: inserted === undefined }),
    )
    const eventId = outcome.replayed ? undefined : outcome.written?.id
    this.logReceived(inbound, eventId, outcome, options)
    if (!outcome.replayed && !outcome.result.duplicate) {
      this.workQueued('inbound')
    }
    return { ...outcome.result, replayed: outcome.replayed }
  }

  private logReceived(
    inbound: NormalizedInbound,
    eventId: number | string | undefined,
    outcome: { replayed: boolean; result: { duplicate: boolean } },
    options: TraceOptions,
  ): void {
    const ids = {
      request_id: options.requestId,
      event_id: eventId === undefined ? undefined : String(eventId),
    }
    this.logger.info('inbound.accepted', {
      ...ids,
      family: inbound.message.family,
      provider_message_id: inbound.providerMessageId,
      body_length: inbound.message.body.length,
      duplicate: outcome.result.duplicate,
      replayed: outcome.replayed,
    })
    this.logger.debug('inbound.addresses', {
      ...ids,
      from: inbound.message.from,
      to: inbound.message.to,
    })
  }

  // Runs `work` in a group commit. With an idempotency key, the key is
  // claimed first (its own commit), and the result is stored in the same
  // transaction as the work, so both commit or neither does; a failure
  // releases the key so that a repeat runs afresh.
  private async idempotently<W, R>(
    body: unknown,
    options: IdempotencyOptions & TraceOptions,
    defaultScope: string,
    work: LockedWork<W>,
    toResult: (written: W) => R,
  ): Promise<
    { replayed: true; result: R } | { replayed: false; result: R; written: W }
  > {
    const key = options.idempotencyKey
    const requestId = options.requestId
    if (key === undefined) {
      const written = await this.write(work.write, {
        lockKey: work.lockKey,
        requestId,
      })
      return { replayed: false, result: toResult(written), written }
    }
    checkIdempotencyKey(key)
    const scope = options.idempotencyScope ?? defaultScope
    const fingerprint = fingerprintOrRefusal(options.idempotencyBody ?? body)
    const claim = await this.write(
      (trx) =>
        claimIdempotencyKey(trx, {
          scope,
          key,
          fingerprint,
          now: this.clock.now(),
          ttlMs: this.config.idempotencyTtlMs,
          staleMs: IDEMPOTENCY_STALE_MS,
        }),
      { lockKey: idempotencyLockKey(scope, key), requestId },
    )
    switch (claim.kind) {
      case 'replay':
        return { replayed: true, result: JSON.parse(claim.result) as R }
      case 'reused':
        throw new IdempotencyKeyReusedError()
      case 'in_progress':
        throw new IdempotencyInProgressError()
      case 'fresh':
        return this.runClaimed(claim.token, work, toResult, requestId)
    }
  }

  private async runClaimed<W, R>(
    token: IdempotencyToken,
    work: LockedWork<W>,
    toResult: (written: W) => R,
    requestId: string | undefined,
  ): Promise<{ replayed: false; result: R; written: W }> {
    try {
      const done = await this.write(
        async (trx) => {
          const written = await work.write(trx)
          const result = toResult(written)
          await completeIdempotencyKey(trx, token, JSON.stringify(result))
          return { written, result }
        },
        { lockKey: work.lockKey, requestId },
      )
      return { replayed: false, ...done }
    } catch (error) {
      await this.write((trx) => releaseIdempotencyKey(trx, token), {
        lockKey: idempotencyLockKey(token.scope, token.key),
        requestId,
      }).catch(() => undefined)
      throw error
    }
  }

  private async queueInbound(
    trx: Kysely<ParleySchema>,
    inbound: NormalizedInbound,
  ): Promise<{ id: number | string } | undefined> {
    const now = isoNow(this.clock)
    const { message, providerMessageId } = inbound
    const { rows } = await insertInboundEvent.execute(trx, {
      family: message.family,
      providerMessageId,
      payload: JSON.stringify(message),
      now,
    })
    return rows[0]
  }

  async start(): Promise<void> {
    this.assertOpen()
    if (this.started) return
    this.started = true
    // Listening first: work another instance queues from now on is seen.
    await this.wakeSignals.listen()
    this.dispatch.start()
    this.inbound.start()
    this.retention.start()
  }

  async stop(options: StopOptions = {}): Promise<boolean> {
    this.stopping = true
    const graceMs = options.graceMs ?? 15_000
    const [dispatched] = await Promise.all([
      this.dispatch.stop(graceMs),
      this.inbound.stop(),
      this.retention.stop(),
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

  async readiness(options: ReadinessOptions = {}): Promise<ReadinessReport> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS
    checkReadinessTimeout(timeoutMs)
    if (this.stopping) return { ready: false, reason: 'shutting down' }
    // Probes that come while one is under way share it: repeated probes
    // against a stalled database never take more than one connection.
    const check = (this.readinessCheck ??= this.checkStorage(timeoutMs).finally(
      () => (this.readinessCheck = undefined),
    ))
    // A check that lost the race still ends (or fails) later: nothing
    // may be left to reject unhandled.
    check.catch(() => undefined)
    const report = await withTimeout(check, timeoutMs)
    return (
      report ?? {
        ready: false,
        reason: `database: no answer within ${timeoutMs} ms`,
      }
    )
  }

  // The database cancels the check's queries once the probe gave up on
  // them, so a stalled check does not keep its pool connection.
  private async checkStorage(timeoutMs: number): Promise<ReadinessReport> {
    try {
      this.checkFile()
      const current = await boundedRead(this.db, timeoutMs, async (kysely) => {
        const view = { dialect: this.db.dialect, kysely }
        await ping(view)
        return isSchemaCurrent(view)
      })
      if (!current) {
        return { ready: false, reason: 'database schema is not current' }
      }
      return { ready: true }
    } catch (error) {
      return { ready: false, reason: `database: ${errorMessage(error)}` }
    }
  }

  // A write to a database file that was removed or replaced would be
  // lost: it is refused (503) instead. The file is checked at most once
  // per FILE_CHECK_INTERVAL_MS, or by a readiness probe meanwhile; the
  // last result holds until the next check. Clients are told that writes
  // are refused, not where the file is: the log and /readyz say that.
  private requireFile(): void {
    if (this.db.checkFile === undefined) return
    if (this.clock.now() - this.fileCheck.at >= FILE_CHECK_INTERVAL_MS) {
      try {
        this.checkFile()
      } catch {
        // Kept in this.fileCheck.
      }
    }
    // A check that could not look (not a StorageFault) refuses nothing:
    // readiness reports it, and SQLite fails writes it cannot make.
    if (this.fileCheck.problem !== undefined && this.fileCheck.lasting) {
      throw new UnavailableError(REFUSES_WRITES, { lasting: true })
    }
  }

  // A database file removed, replaced or damaged under the process loses
  // every later commit: an operator must hear of it, not only the probe.
  // Once per problem, not at every probe and write while it lasts.
  private checkFile(): void {
    const at = this.clock.now()
    try {
      this.db.checkFile?.()
      this.fileCheck = { at, problem: undefined, lasting: false }
      this.fileProblemLogged = undefined
    } catch (error) {
      const problem = errorMessage(error)
      this.fileCheck = { at, problem, lasting: isStorageFault(error) }
      if (problem !== this.fileProblemLogged) {
        this.fileProblemLogged = problem
        this.logger.error('store.file_check_failed', { error: problem })
      }
      throw error
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
    await insertDispatchJob.execute(trx, {
      messageId: Number(threaded.messageId),
      family: message.family,
      now,
    })
    return threaded
  }

  private async write<T>(
    work: (trx: Kysely<ParleySchema>) => Promise<T>,
    context: WriteContext = {},
  ): Promise<T> {
    const { lockKey, requestId, alone } = context
    this.requireFile()
    try {
      return await this.committer.submit(work, lockKey, { alone })
    } catch (error) {
      // Parley's own refusals (a lost idempotency key) pass through as is.
      if (error instanceof ParleyError) throw error
      if (error instanceof ConversationUpsertError) {
        this.events.emit('conversation.failed', {
          error: errorMessage(error.cause),
        })
      }
      this.logger.error('store.write_failed', {
        request_id: requestId,
        error: errorMessage(error),
      })
      throw writeFailure(error)
    }
  }

  // A read that the database failed to answer (it is down, a connection
  // was lost, or with API_RATE_LIMIT_STORE=database a limit check failed)
  // is Parley being unavailable, not a bug: callers get UnavailableError,
  // which the server answers 503 with Retry-After.
  private async read<T>(query: () => Promise<T>): Promise<T> {
    try {
      return await query()
    } catch (error) {
      if (error instanceof ParleyError) throw error
      this.logger.error('store.read_failed', { error: errorMessage(error) })
      throw new UnavailableError('storage failed to answer', { cause: error })
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
    const { items, total } = await this.read(() =>
      listConversations(this.db.kysely, window),
    )
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
        : await this.read(() =>
            findConversation(this.db.kysely, conversationId),
          )
    if (!conversation || conversationId === undefined) {
      throw new NotFoundError('conversation', id)
    }
    const { items, total } = await this.read(() =>
      listMessages(this.db.kysely, conversationId, window),
    )
    return { items, total, ...window }
  }

  private async getMessage(id: string): Promise<MessageDetail> {
    const messageId = parseId(id)
    const message =
      messageId === undefined
        ? undefined
        : await this.read(() => findMessageDetail(this.db.kysely, messageId))
    if (!message) throw new NotFoundError('message', id)
    return message
  }

  private async listDeadLetters(
    queue: QueueName,
    request?: PageRequest,
  ): Promise<Page<DeadLetter>> {
    checkQueue(queue)
    const window = pageWindow(request)
    const { items, total } = await this.read(() =>
      listDeadLetters(this.db.kysely, queue, window),
    )
    return { items, total, ...window }
  }

  private async retryDeadLetter(
    queue: QueueName,
    id: string,
    options: TraceOptions = {},
  ): Promise<void> {
    this.assertOpen()
    checkQueue(queue)
    const rowId = parseId(id)
    const now = isoNow(this.clock)
    const revived =
      rowId !== undefined &&
      (await this.write((trx) => replayDeadLetter(trx, queue, rowId, now), {
        requestId: options.requestId,
      }))
    if (!revived) throw new NotFoundError(`dead letter in ${queue}`, id)
    this.logger.info('dead_letter.replayed', {
      request_id: options.requestId,
      queue,
      id,
    })
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

// The inserts of every accepted message and webhook, built once per
// database (see PreparedStatement).
const insertDispatchJob = new PreparedStatement(
  'insert dispatch job',
  (db, p: { messageId: number; family: ChannelFamily; now: string }) =>
    db.insertInto('dispatch_jobs').values({
      message_id: p.messageId,
      family: p.family,
      state: 'pending',
      run_at: p.now,
      created_at: p.now,
      updated_at: p.now,
    }),
)

const insertInboundEvent = new PreparedStatement(
  'insert inbound event',
  (
    db,
    p: {
      family: ChannelFamily
      providerMessageId: string
      payload: string
      now: string
    },
  ) =>
    db
      .insertInto('inbound_events')
      .values({
        family: p.family,
        provider_message_id: p.providerMessageId,
        payload: p.payload,
        state: 'pending',
        run_at: p.now,
        received_at: p.now,
        updated_at: p.now,
      })
      .onConflict((oc) =>
        oc.columns(['family', 'provider_message_id']).doNothing(),
      )
      .returning('id'),
)

// A write and the contended row it locks first (see GroupCommitter.submit).
interface LockedWork<W> {
  readonly lockKey: string
  readonly write: (trx: Kysely<ParleySchema>) => Promise<W>
}

// The contended row a write locks first (see GroupCommitter.submit), and
// the request it serves, for its log lines.
interface WriteContext {
  readonly lockKey?: string
  readonly requestId?: string
  /** Commit alone on Postgres (see GroupCommitter.submit). */
  readonly alone?: boolean
}

const DEFAULT_READINESS_TIMEOUT_MS = 2000

function checkReadinessTimeout(timeoutMs: number): void {
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
    throw new RangeError(
      `readiness: timeoutMs must be a whole number from 1 to 60000, got ${timeoutMs}`,
    )
  }
}

// The work's result, or undefined when it takes longer than `ms`.
async function withTimeout<T>(
  work: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

// How often writes check that the database file is still there.
const FILE_CHECK_INTERVAL_MS = 1000

// An in-flight marker older than this belongs to a request whose process
// died: a repeat may take it over (DESIGN section 4).
const IDEMPOTENCY_STALE_MS = 30_000

function checkIdempotencyKey(key: unknown): void {
  if (typeof key !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(key)) {
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

const CALL_OPTIONS = new Set([
  'channel',
  'idempotencyKey',
  'idempotencyScope',
  'idempotencyBody',
  'requestId',
])

// JavaScript callers can pass anything as a call's options; a misspelt
// one (idempotencykey) would otherwise be dropped without a word, and with
// it the protection it asked for.
function checkOptionsObject(options: unknown): void {
  if (
    typeof options !== 'object' ||
    options === null ||
    Array.isArray(options)
  ) {
    throw new ValidationError([
      { field: '(options)', message: 'must be an object' },
    ])
  }
  const errors: FieldError[] = []
  for (const [name, value] of Object.entries(options)) {
    if (!CALL_OPTIONS.has(name)) {
      errors.push({ field: `(options).${name}`, message: 'is not an option' })
    } else if (
      (name === 'idempotencyScope' || name === 'requestId') &&
      value !== undefined &&
      typeof value !== 'string'
    ) {
      errors.push({ field: `(options).${name}`, message: 'must be a string' })
    }
  }
  if (errors.length > 0) throw new ValidationError(errors)
}

// A body that is not JSON data (a BigInt, a cycle) has no fingerprint: the
// caller's mistake, not a storage failure.
function fingerprintOrRefusal(body: unknown): string {
  try {
    return fingerprintOf(body)
  } catch {
    throw new ValidationError([
      { field: '(options).idempotencyBody', message: 'must be JSON data' },
    ])
  }
}

function checkChannel(channel: unknown): ChannelFamily {
  if (channel === 'sms' || channel === 'email') return channel
  throw new ValidationError([
    {
      field: 'channel',
      message:
        channel === undefined ? 'is required' : 'must be "sms" or "email"',
    },
  ])
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

// What every write is told while storage refuses writes for good.
const REFUSES_WRITES =
  'storage refuses writes until the server is restarted: its database file was removed, replaced or damaged, or a sync of its disk failed (the server log and /readyz say which)'

// What a caller is told of a failed write. A write committed but not made
// durable may or may not survive a restart: repeating it could repeat the
// message, which only the same Idempotency-Key prevents.
function writeFailure(error: unknown): UnavailableError {
  if (error instanceof DurabilityError && error.committed) {
    return new UnavailableError(
      'storage committed the write but could not make it durable: it may or may not survive a restart, so repeat it only with the same Idempotency-Key',
      { cause: error },
    )
  }
  if (error instanceof DurabilityError) {
    return new UnavailableError(REFUSES_WRITES, { cause: error, lasting: true })
  }
  return new UnavailableError('storage failed to commit the write', {
    cause: error,
  })
}
