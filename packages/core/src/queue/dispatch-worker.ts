import { type Kysely, sql } from 'kysely'
import type { ResolvedConfig } from '../config.js'
import type { ParleyEvents } from '../events.js'
import type { Channel, ChannelFamily } from '../messages/types.js'
import {
  checkedOutcome,
  type OutboundMessage,
  type Provider,
  type ProviderOutcome,
} from '../providers/provider.js'
import { backoffDelay } from '../resilience/backoff.js'
import type {
  ProviderChoice,
  ProviderHealthBoard,
} from '../routing/provider-health.js'
import type { ProviderRegistry } from '../routing/provider-registry.js'
import { applyPendingReports } from '../store/delivery.js'
import { providerLockKey } from '../store/lock-keys.js'
import type { GroupCommitter } from '../store/group-commit.js'
import { PreparedStatement } from '../store/prepared.js'
import {
  type DialectName,
  type DispatchJobsTable,
  type ParleyDatabase,
  type ParleySchema,
  readId,
  readTimestamp,
} from '../store/schema.js'
import { type Clock, isoAfter, isoNow } from '../util/clock.js'
import type { TypedEmitter } from '../util/emitter.js'
import { errorMessage, type Logger } from '../util/logger.js'
import {
  claimDue,
  completeRow,
  deadLetterRow,
  releaseClaims,
  renewClaims,
  rescheduleRow,
  type Settlement,
} from './queue-table.js'
import { WorkerLoop } from './worker-loop.js'

/** What the dispatch worker needs. */
export interface DispatchWorkerDeps {
  readonly db: ParleyDatabase
  readonly committer: GroupCommitter
  readonly registry: ProviderRegistry
  readonly health: ProviderHealthBoard
  readonly config: ResolvedConfig
  readonly clock: Clock
  readonly random: () => number
  readonly events: TypedEmitter<ParleyEvents>
  readonly logger: Logger
}

interface ClaimedJob {
  readonly id: string
  readonly messageId: string
  readonly family: ChannelFamily
  /** Attempts made before this claim. */
  readonly attempts: number
}

type JobRow = {
  [K in keyof DispatchJobsTable]: K extends 'id' | 'message_id'
    ? number | string
    : K extends 'attempts'
      ? number
      : unknown
}

/**
 * Delivers queued outbound messages: claims due jobs (no more than it runs
 * at once), calls the family's provider with a time limit, and records the
 * outcome: `sent`, a retry after backoff, or `failed` with the job
 * dead-lettered after the last attempt.
 */
export class DispatchWorker {
  private readonly loop: WorkerLoop
  private readonly active = new Map<string, Promise<void>>()
  private readonly aborts = new Set<AbortController>()
  private abandoning = false
  // Jobs claimed and not yet settled (a run that threw keeps its claim).
  private readonly held = new Set<string>()
  private readonly token = `dispatch:${crypto.randomUUID()}`
  // When the running jobs' leases are next extended (clock ms).
  private renewDueAt = 0

  constructor(private readonly deps: DispatchWorkerDeps) {
    this.loop = new WorkerLoop({
      name: 'dispatch',
      pollIntervalMs: deps.config.pollIntervalMs,
      step: () => this.step(),
      logger: deps.logger,
    })
  }

  /** Starts claiming jobs. */
  start(): void {
    this.loop.start()
  }

  /** Looks for new work now instead of at the next poll. */
  wake(): void {
    this.loop.wake()
  }

  /**
   * Stops claiming, lets running calls finish for up to `graceMs`, then
   * aborts the rest and gives their jobs back to the queue. Resolves `true`
   * when every call finished within the grace period.
   */
  async stop(graceMs: number): Promise<boolean> {
    await this.loop.stop()
    const finished = await this.waitForActive(graceMs)
    if (!finished) {
      this.abandoning = true
      for (const controller of this.aborts) controller.abort()
      await Promise.allSettled(this.active.values())
    }
    await this.releaseHeld()
    return finished
  }

  /** Claims and starts what the free slots allow; true if it filled them. */
  async step(): Promise<boolean> {
    await this.renewLeases()
    const free = this.deps.config.dispatchConcurrency - this.active.size
    if (free <= 0) return false
    const wasIdle = this.active.size === 0
    const jobs = await this.claim(free)
    // Fresh leases need no renewal for a third of their length.
    if (wasIdle && jobs.length > 0) this.scheduleRenewal()
    for (const job of jobs) {
      this.deps.logger.info('dispatch.claimed', {
        message_id: job.messageId,
        job_id: job.id,
        attempts: job.attempts,
      })
      this.launch(job)
    }
    return jobs.length === free
  }

  /** Resolves when every job started so far has settled (for tests). */
  async idle(): Promise<void> {
    while (this.active.size > 0) await Promise.allSettled(this.active.values())
  }

  // Every third of a lease, while calls run, their leases are pushed out
  // again. The loop polls even when every slot is busy, so this runs on
  // the poll cadence; a job whose run threw is not active and is left to
  // expire, so that another try takes it.
  private async renewLeases(): Promise<void> {
    const { db, clock, config } = this.deps
    if (this.active.size === 0 || clock.now() < this.renewDueAt) return
    this.scheduleRenewal()
    const leaseUntil = isoAfter(clock, config.leaseMs)
    const ids = [...this.active.keys()]
    const renewed = await db.writeTransaction((trx) =>
      renewClaims(trx, 'dispatch_jobs', { token: this.token, ids, leaseUntil }),
    )
    this.deps.logger.debug('dispatch.leases_renewed', {
      count: renewed,
      locked_until: leaseUntil,
    })
  }

  private scheduleRenewal(): void {
    const { clock, config } = this.deps
    this.renewDueAt = clock.now() + Math.floor(config.leaseMs / 3)
  }

  private async claim(limit: number): Promise<ClaimedJob[]> {
    const { db, clock, config } = this.deps
    const now = isoNow(clock)
    // In the group commit with the sends that queued the jobs: a claim of
    // its own transaction paid a durable commit (an fsync on SQLite) for a
    // handful of jobs, and the claims outnumbered the sends' commits.
    return this.deps.committer.submit(async (trx) => {
      const rows = await claimDue<JobRow>(trx, {
        table: 'dispatch_jobs',
        dialect: db.dialect,
        now,
        leaseUntil: isoAfter(clock, config.leaseMs),
        limit,
        token: this.token,
      })
      if (rows.length === 0) return []
      await markSending(trx, db.dialect, rows, now)
      return rows.map(toClaimedJob)
    })
  }

  private launch(job: ClaimedJob): void {
    this.held.add(job.id)
    const run = this.run(job)
      .then((settled) => {
        if (settled) this.held.delete(job.id)
      })
      .catch((error: unknown) => {
        // The claim stays until its lease expires, then another try runs.
        this.deps.logger.error('dispatch.job_failed', {
          job_id: job.id,
          message_id: job.messageId,
          error: errorMessage(error),
        })
      })
      .finally(() => {
        this.active.delete(job.id)
        this.loop.wake()
      })
    this.active.set(job.id, run)
  }

  // Resolves true when the job was settled (or its claim was lost).
  private async run(job: ClaimedJob): Promise<boolean> {
    if (!this.deps.registry.hasRoute(job.family)) {
      await this.failUnroutable(job)
      return true
    }
    const choice = this.deps.health.choose(job.family, job.messageId)
    if (choice.kind === 'defer') {
      await this.defer(job, choice)
      return true
    }
    return this.attempt(job, choice.provider)
  }

  private async attempt(job: ClaimedJob, provider: Provider): Promise<boolean> {
    let message: OutboundMessage
    try {
      message = await loadOutbound(this.deps.db.kysely, job.messageId)
    } catch (error) {
      this.deps.health.release(provider)
      throw error
    }
    const attempt = job.attempts + 1
    this.deps.logger.debug('dispatch.attempt_started', {
      message_id: job.messageId,
      provider: provider.name,
      attempt,
    })
    const outcome = withoutAddresses(
      this.capRetryAfter(await this.callProvider(provider, message, attempt)),
      message,
    )
    // A call cut short by shutdown is not an attempt the provider answered:
    // record nothing, and let releaseHeld hand the job back untouched.
    if (this.abandoning) return false
    this.deps.health.record(provider, outcome, job.messageId)
    this.deps.events.emit('dispatch.attempt', {
      family: job.family,
      provider: provider.name,
      messageId: job.messageId,
      attempt,
      outcome: outcome.kind,
    })
    await this.record(job, provider, attempt, outcome)
    return true
  }

  // No provider of the family may take a call now (breaker open, trial
  // running, or paused by a 429): put the job back, uncounted, for when
  // the first one may, plus up to a second of jitter so that deferred jobs
  // do not all wake at once.
  private async defer(
    job: ClaimedJob,
    choice: Extract<ProviderChoice, { kind: 'defer' }>,
  ): Promise<void> {
    const { retryAt, reason } = choice
    const settlement = this.settlement(job, job.attempts)
    const jitter = Math.floor(this.deps.random() * 1000)
    const runAt = new Date(retryAt + jitter).toISOString()
    const kept = await this.deps.committer.submit(async (trx) => {
      const ok = await rescheduleRow(trx, settlement, runAt, reason)
      if (ok)
        await setMessageStatus(trx, job.messageId, 'queued', settlement.now)
      return ok
    })
    // DESIGN section 7 counts deferrals by a breaker; a job held back only
    // by a provider's Retry-After pause is not short-circuited.
    if (kept && choice.byBreaker) {
      const provider = this.deps.registry.providersFor(job.family)[0]
      this.deps.events.emit('dispatch.short_circuited', {
        family: job.family,
        provider: provider?.name ?? '',
      })
    }
    this.logSettled(job, settlement.attempts, kept, 'deferred', {
      run_at: runAt,
      reason,
    })
  }

  private async callProvider(
    provider: Provider,
    message: OutboundMessage,
    attempt: number,
  ): Promise<ProviderOutcome> {
    const controller = new AbortController()
    const timeoutMs =
      this.deps.config.providerTimeoutMs + (provider.extraTimeoutMs ?? 0)
    this.aborts.add(controller)
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<ProviderOutcome>((resolve) => {
      timer = setTimeout(() => {
        controller.abort()
        resolve({ kind: 'transient', error: `timed out after ${timeoutMs} ms` })
      }, timeoutMs)
    })
    try {
      // A provider may throw before it returns a promise, or resolve with
      // something that is not an outcome: both are one transient attempt,
      // so the job retries and in the end dead-letters instead of hanging.
      const call = new Promise<unknown>((resolve) => {
        resolve(provider.send(message, { attempt, signal: controller.signal }))
      }).then(checkedOutcome, (error: unknown): ProviderOutcome => ({
        kind: 'transient',
        error: errorMessage(error),
      }))
      return await Promise.race([call, timedOut])
    } finally {
      clearTimeout(timer)
      this.aborts.delete(controller)
    }
  }

  // Retry-After is honoured up to retryAfterMaxMs, both for the job's
  // retry and for the pause of the provider: an uncapped pause would defer
  // the retried job (and every other one of the family) past the cap.
  private capRetryAfter(outcome: ProviderOutcome): ProviderOutcome {
    if (outcome.kind !== 'rate_limited') return outcome
    if (outcome.retryAfterMs === undefined) return outcome
    const cap = this.deps.config.retryAfterMaxMs
    return { ...outcome, retryAfterMs: Math.min(outcome.retryAfterMs, cap) }
  }

  private async record(
    job: ClaimedJob,
    provider: Provider,
    attempt: number,
    outcome: ProviderOutcome,
  ): Promise<void> {
    const settlement = this.settlement(job, attempt)
    switch (outcome.kind) {
      case 'sent':
        return this.markSent(
          job,
          settlement,
          provider,
          outcome.providerMessageId,
        )
      case 'rate_limited':
        return this.retryOrFail(
          job,
          settlement,
          outcome.error,
          outcome.retryAfterMs,
        )
      case 'transient':
        return this.retryOrFail(job, settlement, outcome.error)
      case 'permanent':
        return this.fail(job, settlement, outcome.error)
    }
  }

  private async markSent(
    job: ClaimedJob,
    settlement: Settlement,
    provider: Provider,
    providerMessageId: string,
  ): Promise<void> {
    // Ordered with the reports of this id (see lockProviderId); a batch
    // takes these locks in the order of the keys, as reports do.
    const lockKey = providerLockKey(job.family, providerMessageId)
    const kept = await this.deps.committer.submit(async (trx) => {
      const ok = await completeRow(trx, settlement)
      if (ok) {
        await setSentStatements[this.deps.db.dialect].execute(trx, {
          id: Number(job.messageId),
          provider: provider.name,
          providerMessageId,
          now: settlement.now,
          lockKey,
        })
        // Reports may beat the provider's answer here; apply them now.
        await applyPendingReports(
          trx,
          job.family,
          providerMessageId,
          job.messageId,
          settlement.now,
        )
      }
      return ok
    }, lockKey)
    this.logSettled(job, settlement.attempts, kept, 'sent', {
      provider: provider.name,
    })
  }

  private async retryOrFail(
    job: ClaimedJob,
    settlement: Settlement,
    error: string,
    retryAfterMs?: number,
  ): Promise<void> {
    const { config, random, clock } = this.deps
    if (settlement.attempts >= 1 + config.maxRetries) {
      return this.fail(job, settlement, error)
    }
    const backoff = backoffDelay(
      { baseMs: config.backoffBaseMs, maxMs: config.backoffMaxMs },
      settlement.attempts,
      random,
    )
    const asked = Math.min(retryAfterMs ?? 0, config.retryAfterMaxMs)
    const runAt = isoAfter(clock, Math.max(backoff, asked))
    const kept = await this.deps.committer.submit(async (trx) => {
      const ok = await rescheduleRow(trx, settlement, runAt, error)
      if (ok)
        await setMessageStatus(trx, job.messageId, 'queued', settlement.now)
      return ok
    })
    this.logSettled(job, settlement.attempts, kept, 'retry_scheduled', {
      run_at: runAt,
      error,
    })
  }

  private async fail(
    job: ClaimedJob,
    settlement: Settlement,
    error: string,
  ): Promise<void> {
    const kept = await this.deps.committer.submit(async (trx) => {
      const ok = await deadLetterRow(trx, settlement, error)
      if (ok)
        await setMessageStatus(trx, job.messageId, 'failed', settlement.now)
      return ok
    })
    if (kept) {
      this.deps.events.emit('dispatch.dead_letter', {
        family: job.family,
        messageId: job.messageId,
        reason: error,
      })
    }
    this.logSettled(job, settlement.attempts, kept, 'dead_lettered', { error })
  }

  private async failUnroutable(job: ClaimedJob): Promise<void> {
    // Possible only when the configuration changed since the message was
    // accepted: sends are refused at the edge when no provider serves them.
    this.deps.events.emit('routing.invalid', { family: job.family })
    const settlement = this.settlement(job, job.attempts)
    await this.fail(job, settlement, `no_route: no provider for ${job.family}`)
  }

  private settlement(job: ClaimedJob, attempts: number): Settlement {
    return {
      table: 'dispatch_jobs',
      id: job.id,
      token: this.token,
      now: isoNow(this.deps.clock),
      attempts,
    }
  }

  private logSettled(
    job: ClaimedJob,
    attempts: number,
    kept: boolean,
    outcome: string,
    fields: Record<string, unknown>,
  ): void {
    if (!kept) {
      this.deps.logger.warn('dispatch.claim_lost', {
        message_id: job.messageId,
        job_id: job.id,
      })
      return
    }
    // A dead letter needs an operator, as inbound ones do: error level.
    const level = outcome === 'dead_lettered' ? 'error' : 'info'
    this.deps.logger[level](`dispatch.${outcome}`, {
      message_id: job.messageId,
      job_id: job.id,
      attempts,
      ...fields,
    })
  }

  private async waitForActive(graceMs: number): Promise<boolean> {
    if (this.active.size === 0) return true
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs)
    })
    const done = this.idle().then(() => true as const)
    const finished = await Promise.race([done, expired])
    clearTimeout(timer)
    return finished
  }

  private async releaseHeld(): Promise<void> {
    if (this.held.size === 0) return
    this.held.clear()
    const now = isoNow(this.deps.clock)
    const released = await this.deps.db
      .writeTransaction(async (trx) => {
        await trx
          .updateTable('messages')
          .set({ status: 'queued', updated_at: now })
          .where('id', 'in', (eb) =>
            eb
              .selectFrom('dispatch_jobs')
              .select('message_id')
              .where('state', '=', 'running')
              .where('claim_token', '=', this.token),
          )
          .where('status', '=', 'sending')
          .execute()
        return releaseClaims(trx, 'dispatch_jobs', this.token, now)
      })
      .catch((error: unknown) => {
        // Stopping must not fail on a database that does not answer: the
        // jobs come back when their leases end.
        this.deps.logger.warn('dispatch.release_failed', {
          error: errorMessage(error),
        })
        return 0
      })
    if (released > 0) {
      this.deps.logger.info('dispatch.claims_released', { count: released })
    }
  }
}

// A provider's error text may quote the message's addresses (Twilio's
// "The 'To' number ... is not valid") or echo the form it was posted
// (`To=%2B1...&Body=...`); it is logged at info level and kept as
// last_error, where addresses and bodies have no place (addresses are
// debug-level data, bodies are never logged). Each is replaced in the
// encodings a provider is likely to use.
function withoutAddresses(
  outcome: ProviderOutcome,
  message: OutboundMessage,
): ProviderOutcome {
  if (outcome.kind === 'sent') return outcome
  const replacements = [
    ...encodings(message.body, MIN_REDACTED_BODY).map(
      (text) => [text, '[body]'] as const,
    ),
    ...[message.from, message.to].flatMap((address) =>
      addressForms(address).map((text) => [text, '[address]'] as const),
    ),
  ].sort(([a], [b]) => b.length - a.length)
  let error = outcome.error
  for (const [text, label] of replacements)
    error = error.split(text).join(label)
  return error === outcome.error ? outcome : { ...outcome, error }
}

// A body this short is left in place: replacing every occurrence of a
// word or two would garble the error text more than it hides.
const MIN_REDACTED_BODY = 4

// An address as written, its digits alone (without "+"), and its last ten
// digits (a North American number's national form), each also encoded.
function addressForms(address: string): string[] {
  const digits = address.replace(/\D/g, '')
  const numeric = /^\+?[\d\s().-]+$/.test(address) && digits.length >= 7
  const forms = numeric
    ? [address, digits, digits.length > 10 ? digits.slice(-10) : digits]
    : [address]
  return forms.flatMap((form) => encodings(form, 1))
}

// The text as is, URL-encoded, and form-encoded (spaces as "+").
function encodings(text: string, minLength: number): string[] {
  if (text.length < minLength) return []
  const form = new URLSearchParams({ v: text }).toString().slice(2)
  return [...new Set([text, encodeURIComponent(text), form])]
}

function toClaimedJob(row: JobRow): ClaimedJob {
  return {
    id: readId(row.id),
    messageId: readId(row.message_id),
    family: row.family as ChannelFamily,
    attempts: Number(row.attempts),
  }
}

async function markSending(
  trx: Kysely<ParleySchema>,
  dialect: DialectName,
  rows: readonly JobRow[],
  now: string,
): Promise<void> {
  const ids = rows.map((row) => Number(row.message_id))
  await markSendingStatements[dialect].execute(trx, {
    // One parameter for the whole list, whatever its length: a JSON array
    // on SQLite (json_each), an array literal on Postgres (= any).
    ids: dialect === 'sqlite' ? JSON.stringify(ids) : `{${ids.join(',')}}`,
    now,
  })
}

async function setMessageStatus(
  trx: Kysely<ParleySchema>,
  messageId: string,
  status: 'queued' | 'failed',
  now: string,
): Promise<void> {
  await setStatusStatement.execute(trx, {
    id: Number(messageId),
    status,
    now,
  })
}

async function loadOutbound(
  db: Kysely<ParleySchema>,
  messageId: string,
): Promise<OutboundMessage> {
  const row = await loadStatement.takeFirstOrThrow(db, {
    id: Number(messageId),
  })
  const phone = row.channel !== 'email'
  return {
    id: readId(row.id),
    channel: row.channel as Channel,
    // Providers get phone numbers in E.164 and email addresses as given.
    from: phone ? row.from_participant : row.from_address,
    to: phone ? row.to_participant : row.to_address,
    subject: row.subject,
    body: row.body,
    attachments: JSON.parse(row.attachments) as string[],
    timestamp: readTimestamp(row.timestamp),
  }
}

// The statements run for every claim and every job (see PreparedStatement).
const markSendingStatements: Record<
  DialectName,
  PreparedStatement<{ ids: string; now: string }, unknown>
> = {
  sqlite: new PreparedStatement('mark sending on SQLite', (db, p) =>
    db
      .updateTable('messages')
      .set({ status: 'sending', updated_at: p.now })
      .where(sql<boolean>`id in (select value from json_each(${p.ids}))`)
      .where('status', '=', 'queued'),
  ),
  postgres: new PreparedStatement('mark sending on Postgres', (db, p) =>
    db
      .updateTable('messages')
      .set({ status: 'sending', updated_at: p.now })
      .where(sql<boolean>`id = any(cast(${p.ids} as bigint[]))`)
      .where('status', '=', 'queued'),
  ),
}

const setStatusStatement = new PreparedStatement(
  'set message status',
  (db, p: { id: number; status: 'queued' | 'failed'; now: string }) =>
    db
      .updateTable('messages')
      .set({ status: p.status, updated_at: p.now })
      .where('id', '=', p.id),
)

type SetSent = {
  id: number
  provider: string
  providerMessageId: string
  now: string
  /** The advisory lock's key on Postgres (see lockProviderId). */
  lockKey: string
}

function setSent(db: Kysely<ParleySchema>, p: SetSent) {
  return db
    .updateTable('messages')
    .set({
      provider: p.provider,
      provider_message_id: p.providerMessageId,
      status: 'sent',
      updated_at: p.now,
    })
    .where('id', '=', p.id)
}

// On Postgres the same statement first takes the advisory lock of the
// provider id (an uncommitted subquery runs once, before the update): the
// pending reports are then read by a later statement, which sees every
// report committed before the lock was granted. One round trip, not two.
const setSentStatements: Record<
  DialectName,
  PreparedStatement<SetSent, unknown>
> = {
  sqlite: new PreparedStatement('set message sent on SQLite', setSent),
  postgres: new PreparedStatement('set message sent on Postgres', (db, p) =>
    setSent(db, p).where(
      sql<boolean>`(select pg_advisory_xact_lock(hashtextextended(${p.lockKey}, 0))) is null`,
      'is',
      false,
    ),
  ),
}

const loadStatement = new PreparedStatement(
  'load outbound message',
  (db, p: { id: number }) =>
    db
      .selectFrom('messages')
      .select([
        'id',
        'channel',
        'from_address',
        'to_address',
        'from_participant',
        'to_participant',
        'subject',
        'body',
        'attachments',
        'timestamp',
      ])
      .where('id', '=', p.id),
)
