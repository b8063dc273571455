import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import {
  createMockProvider,
  createParley,
  type FieldError,
  type Logger,
  migrateToLatest,
  type Parley,
  type ParleyConfig,
  type ParleyDatabase,
  type Provider,
  type ProviderOutcome,
  type OutboundMessage,
  type SendContext,
  silentLogger,
  ValidationError,
} from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { openSqlite } from '@parley/core/sqlite'
import { inject } from 'vitest'
import {
  freshSchema,
  POSTGRES_URL,
  processDatabase,
} from '../../../test/helpers/postgres.js'
import { resolveConfig, type ResolvedConfig } from '../src/config.js'
import type { ParleyEvents } from '../src/events.js'
import type { DialectName } from '../src/store/schema.js'
import type { ChannelFamily } from '../src/messages/types.js'
import { Metrics } from '../src/metrics/metrics.js'
import { DispatchWorker } from '../src/queue/dispatch-worker.js'
import { InboundWorker } from '../src/queue/inbound-worker.js'
import { ProviderHealthBoard } from '../src/routing/provider-health.js'
import { ProviderRegistry } from '../src/routing/provider-registry.js'
import { GroupCommitter } from '../src/store/group-commit.js'
import type { Clock } from '../src/util/clock.js'
import { TypedEmitter } from '../src/util/emitter.js'

/** 2024-11-01T12:00:00.000Z, the instant every manual clock starts at. */
export const START = Date.parse('2024-11-01T12:00:00.000Z')

/** Rate limits high enough that bulk tests never meet them. */
export const BULK_LIMITS = {
  rateLimitPerSenderPerMin: 1_000_000_000,
  rateLimitPerIpPerMin: 1_000_000_000,
  rateLimitWebhookPerIpPerMin: 1_000_000_000,
} as const

/** A clock that moves only when a test moves it. */
export class ManualClock implements Clock {
  constructor(public t = START) {}

  now(): number {
    return this.t
  }

  advance(ms: number): void {
    this.t += ms
  }

  iso(offsetMs = 0): string {
    return new Date(this.t + offsetMs).toISOString()
  }
}

/** A valid outbound SMS request, with fields replaced by `overrides`. */
export function smsRequest(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    from: '+18045551234',
    to: '+12025550100',
    type: 'sms',
    body: 'Hello there',
    attachments: null,
    timestamp: '2024-11-01T14:00:00Z',
    ...overrides,
  }
}

/** A valid outbound email request, with fields replaced by `overrides`. */
export function emailRequest(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    from: 'ann@example.com',
    to: 'bob@example.com',
    subject: 'Hi',
    body: '<p>Hello</p>',
    attachments: [],
    timestamp: '2024-11-01T14:00:00Z',
    ...overrides,
  }
}

/** A valid inbound SMS webhook payload. */
export function smsWebhook(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return smsRequest({ messaging_provider_id: 'SM-1', ...overrides })
}

/** A valid inbound email webhook payload. */
export function emailWebhook(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return emailRequest({ xillio_id: 'X-1', ...overrides })
}

/** The `details` of the ValidationError that `run` throws. */
export function validationDetails(run: () => unknown): FieldError[] {
  try {
    run()
  } catch (error) {
    if (error instanceof ValidationError) return [...error.details]
    throw error
  }
  throw new Error('expected a ValidationError, but nothing was thrown')
}

/** The names of the fields that `run` rejects. */
export function rejectedFields(run: () => unknown): string[] {
  return validationDetails(run).map((detail) => detail.field)
}

/**
 * The dialect the storage suite runs on: the `sqlite` and `postgres`
 * projects of vitest.config.ts set `PARLEY_TEST_DIALECT`; SQLite elsewhere.
 */
export const DIALECT: DialectName =
  process.env.PARLEY_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite'

/** The dialect's name for test names: `SQLite` or `Postgres`. */
export const DIALECT_LABEL = DIALECT === 'postgres' ? 'Postgres' : 'SQLite'

/** A migrated private in-memory SQLite database, whatever the dialect. */
export async function memoryDb(): Promise<ParleyDatabase> {
  const db = openSqlite({ filename: ':memory:' })
  await migrateToLatest(db)
  return db
}

/**
 * An empty database of {@link DIALECT} that outlives the connections to
 * it, for tests of restarts and of several connections: a SQLite file in
 * a temporary folder, or a Postgres schema of its own (in a database of the
 * test file's own, see test/helpers/postgres.ts).
 */
export interface TestStore {
  /** Opens a new connection (a pool on Postgres); close each one. */
  open(): ParleyDatabase
  /** Deletes the database. Close every connection first. */
  remove(): Promise<void>
}

export async function testStore(): Promise<TestStore> {
  if (DIALECT === 'postgres') {
    const url = inject('postgresUrl') ?? POSTGRES_URL
    const schema = await freshSchema(await processDatabase(url))
    return {
      open: () =>
        openPostgres({ connectionString: schema.url, schema: schema.name }),
      remove: () => schema.drop(),
    }
  }
  const dir = await tempDir()
  const filename = join(dir.path, 'parley.db')
  return { open: () => openSqlite({ filename }), remove: dir.remove }
}

/** Options of {@link testDb}. */
export interface TestDbOptions {
  /** Runs the migrations. @default true */
  readonly migrate?: boolean
}

/**
 * A fresh database of {@link DIALECT} for one test, migrated: a private
 * in-memory SQLite database, or a Postgres schema of its own (so tests may
 * run in parallel), dropped when the database is closed.
 */
export async function testDb(
  options: TestDbOptions = {},
): Promise<ParleyDatabase> {
  const migrate = options.migrate ?? true
  if (DIALECT === 'sqlite') {
    const db = openSqlite({ filename: ':memory:' })
    if (migrate) await migrateToLatest(db)
    return db
  }
  const store = await testStore()
  const db = store.open()
  const close = async () => {
    await db.close()
    await store.remove()
  }
  try {
    if (migrate) await migrateToLatest(db)
  } catch (error) {
    await close()
    throw error
  }
  return { ...db, close }
}

/**
 * A stored row as SQLite returns it, whichever the dialect, so that one
 * assertion serves both: Postgres returns `timestamptz` columns as Dates
 * and `bigint` ids as strings.
 */
export function plainRow<T extends object>(row: T): T {
  const plain: Record<string, unknown> = {}
  for (const [column, value] of Object.entries(row)) {
    plain[column] =
      value instanceof Date
        ? value.toISOString()
        : ID_COLUMNS.has(column) && typeof value === 'string'
          ? Number(value)
          : value
  }
  return plain as T
}

const ID_COLUMNS = new Set(['id', 'message_id', 'conversation_id'])

/** {@link plainRow} of every row. */
export function plainRows<T extends object>(rows: readonly T[]): T[] {
  return rows.map(plainRow)
}

/** A temporary folder, removed by the returned function. */
export async function tempDir(): Promise<{
  path: string
  remove: () => Promise<void>
}> {
  const path = await mkdtemp(join(tmpdir(), 'parley-core-test-'))
  return { path, remove: () => rm(path, { recursive: true, force: true }) }
}

/** A ParleyDatabase that counts (and can intercept) write transactions. */
export interface CountingDb extends ParleyDatabase {
  /** How many times `writeTransaction` was called. */
  readonly calls: number
  /** Runs before each call, with its 1-based number; may throw. */
  before: ((call: number) => Promise<void> | void) | undefined
}

/** Wraps a real database, counting its write transactions. */
export function countingDb(inner: ParleyDatabase): CountingDb {
  let calls = 0
  const wrapper: CountingDb = {
    dialect: inner.dialect,
    schema: inner.schema,
    kysely: inner.kysely,
    ...(inner.notify && { notify: inner.notify.bind(inner) }),
    ...(inner.subscribe && { subscribe: inner.subscribe.bind(inner) }),
    get calls() {
      return calls
    },
    before: undefined,
    async writeTransaction(work) {
      calls += 1
      await wrapper.before?.(calls)
      return inner.writeTransaction(work)
    },
    close: () => inner.close(),
  }
  return wrapper
}

/** A promise with its resolve function, for calls the test finishes. */
export interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/** One call a {@link ScriptedProvider} received. */
export interface ProviderCall {
  readonly message: OutboundMessage
  readonly context: SendContext
}

/** A provider whose answers the test decides, recording every call. */
export interface ScriptedProvider extends Provider {
  readonly calls: ProviderCall[]
  answer: (call: ProviderCall) => Promise<ProviderOutcome> | ProviderOutcome
}

export function scriptedProvider(
  family: ChannelFamily,
  answer: ScriptedProvider['answer'],
  name = `scripted-${family}`,
): ScriptedProvider {
  const provider: ScriptedProvider = {
    name,
    family,
    calls: [],
    answer,
    async send(message, context) {
      const call = { message, context }
      provider.calls.push(call)
      return provider.answer(call)
    },
  }
  return provider
}

/** Everything a queue test drives by hand. */
export interface Harness {
  readonly db: CountingDb
  readonly clock: ManualClock
  readonly config: ResolvedConfig
  /** The events the hand-made workers emit; `metrics` listens to them. */
  readonly events: TypedEmitter<ParleyEvents>
  /** Metrics of the hand-made workers (not of `parley`). */
  readonly metrics: Metrics
  readonly committer: GroupCommitter
  /** A facade over the same database and clock, never started. */
  readonly parley: Parley
  /** A new dispatch worker (its own claim token) over the harness. */
  /** A dispatch worker over the harness, logging to `logger` if given. */
  dispatchWorker(
    providers?: readonly Provider[],
    logger?: Logger,
  ): DispatchWorker
  /** A new inbound worker (its own claim token) over the harness. */
  /** An inbound worker over the harness, logging to `logger` if given. */
  inboundWorker(logger?: Logger): InboundWorker
  close(): Promise<void>
}

export interface HarnessOptions {
  readonly providers?: readonly Provider[]
  readonly config?: ParleyConfig
  readonly random?: () => number
}

/**
 * A fresh migrated database of {@link DIALECT} (see {@link testDb}), a manual clock, a facade that queues work,
 * and factories for workers whose `step()` the test calls itself.
 */
export async function createHarness(
  options: HarnessOptions = {},
): Promise<Harness> {
  const providers = options.providers ?? [
    createMockProvider({ family: 'sms' }),
    createMockProvider({ family: 'email' }),
  ]
  const db = countingDb(await testDb())
  const clock = new ManualClock()
  // Tests that send in bulk must not be shaped by the per-sender limit;
  // a test of the limits sets them itself.
  const configOptions = { ...BULK_LIMITS, ...options.config }
  const config = resolveConfig(configOptions)
  const random = options.random ?? (() => 0.5)
  const events = new TypedEmitter<ParleyEvents>((error) => {
    throw error
  })
  const metrics = new Metrics(clock)
  metrics.listen(events)
  const committer = new GroupCommitter(db, config.maxWriteBatch)
  const parley = await createParley({
    db,
    providers,
    config: configOptions,
    clock,
    random,
    migrate: false,
  })
  const deps = {
    db,
    committer,
    config,
    clock,
    random,
    events,
    logger: silentLogger,
  }
  return {
    db,
    clock,
    config,
    events,
    metrics,
    committer,
    parley,
    dispatchWorker: (list = providers, logger = silentLogger) => {
      const registry = new ProviderRegistry(list)
      const health = new ProviderHealthBoard({
        registry,
        clock,
        events,
        logger: silentLogger,
        breaker: {
          threshold: config.breakerThreshold,
          openMs: config.breakerOpenMs,
        },
      })
      return new DispatchWorker({ ...deps, logger, registry, health })
    },
    inboundWorker: (logger) =>
      new InboundWorker(logger ? { ...deps, logger } : deps),
    close: async () => {
      await committer.drain()
      await db.close()
    },
  }
}

/** The dispatch job row of a message (see {@link plainRow}). */
export async function jobOf(db: ParleyDatabase, messageId: string) {
  const row = await db.kysely
    .selectFrom('dispatch_jobs')
    .selectAll()
    .where('message_id', '=', Number(messageId))
    .executeTakeFirstOrThrow()
  return plainRow(row)
}

/** The stored message row (see {@link plainRow}). */
export async function messageRow(db: ParleyDatabase, messageId: string) {
  const row = await db.kysely
    .selectFrom('messages')
    .selectAll()
    .where('id', '=', Number(messageId))
    .executeTakeFirstOrThrow()
  return plainRow(row)
}

/** Row counts of every table that holds messages or work. */
export async function rowCounts(db: ParleyDatabase) {
  const count = async (table: string) => {
    const result = await sql<{
      n: number
    }>`select count(*) as n from ${sql.table(table)}`.execute(db.kysely)
    return Number(result.rows[0]?.n ?? 0)
  }
  return {
    conversations: await count('conversations'),
    messages: await count('messages'),
    dispatch_jobs: await count('dispatch_jobs'),
    inbound_events: await count('inbound_events'),
  }
}

/**
 * Makes the database refuse to insert a message whose body is `body`, with
 * the error `injected message failure` (a trigger, on either dialect).
 * Resolves a function that removes the trigger again.
 */
export async function poisonMessageBody(
  db: ParleyDatabase,
  body: string,
): Promise<() => Promise<void>> {
  const literal = `'${body.replaceAll("'", "''")}'`
  return injectFailure(db, {
    name: 'poison_message',
    table: 'messages',
    when: `new.body = ${literal}`,
    error: 'injected message failure',
  })
}

/** Makes the database refuse every conversation upsert. */
export async function poisonConversations(
  db: ParleyDatabase,
): Promise<() => Promise<void>> {
  return injectFailure(db, {
    name: 'poison_conversation',
    table: 'conversations',
    when: 'true',
    error: 'injected upsert failure',
  })
}

interface InjectedFailure {
  /** The trigger's (and on Postgres its function's) name. */
  readonly name: string
  readonly table: string
  /** An SQL condition on the new row, `new`. */
  readonly when: string
  readonly error: string
}

async function injectFailure(
  db: ParleyDatabase,
  failure: InjectedFailure,
): Promise<() => Promise<void>> {
  const { name, table, when, error } = failure
  const run = (statement: string) =>
    sql
      .raw(statement)
      .execute(db.kysely)
      .then(() => undefined)
  if (db.dialect === 'sqlite') {
    await run(
      `create trigger ${name} before insert on ${table} when ${when}
       begin select raise(abort, '${error}'); end`,
    )
    return () => run(`drop trigger ${name}`)
  }
  await run(
    `create function ${name}() returns trigger language plpgsql as $$
     begin
       if ${when} then raise exception '${error}'; end if;
       return new;
     end $$`,
  )
  await run(
    `create trigger ${name} before insert on ${table}
     for each row execute function ${name}()`,
  )
  return () => run(`drop trigger ${name} on ${table}`)
}

/**
 * A repeatable source of numbers in [0, 1) (mulberry32), for jitter that
 * is spread out like `Math.random` but the same on every run.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

/** A provider that forwards to another, counting the calls it passes on. */
export interface CountingProvider extends Provider {
  /** Every call, in order: the message id and the attempt number. */
  readonly calls: Array<{
    readonly messageId: string
    readonly attempt: number
  }>
}

export function countingProvider(inner: Provider): CountingProvider {
  const calls: CountingProvider['calls'] = []
  return {
    name: inner.name,
    family: inner.family,
    calls,
    send(message, context) {
      calls.push({ messageId: message.id, attempt: context.attempt })
      return inner.send(message, context)
    },
  }
}

/** When the earliest pending dispatch job is due, or undefined if none. */
export async function earliestPendingRunAt(
  db: ParleyDatabase,
): Promise<number | undefined> {
  const row = await db.kysely
    .selectFrom('dispatch_jobs')
    .select('run_at')
    .where('state', '=', 'pending')
    .orderBy('run_at')
    .limit(1)
    .executeTakeFirst()
  return row === undefined ? undefined : new Date(row.run_at).getTime()
}

/** Options of {@link dispatchUntilSettled}. */
export interface SettleOptions {
  /**
   * Moves the clock in whole ticks of this many ms (like a worker that
   * polls), so that jobs due close together are claimed together; 0 moves
   * it exactly to the next due job. @default 0
   */
  readonly tickMs?: number
  /** Gives up after this many rounds. @default 100000 */
  readonly maxRounds?: number
}

/**
 * Steps `worker` and waits for what it started, moving the clock to the
 * next due job whenever nothing is due, until no dispatch job is pending.
 * Resolves the number of rounds; throws after `maxRounds`.
 */
export async function dispatchUntilSettled(
  h: Harness,
  worker: DispatchWorker,
  options: SettleOptions = {},
): Promise<number> {
  const { tickMs = 0, maxRounds = 100_000 } = options
  for (let round = 1; round <= maxRounds; round += 1) {
    await worker.step()
    await worker.idle()
    const next = await earliestPendingRunAt(h.db)
    if (next === undefined) return round
    const wait = next - h.clock.now()
    if (wait > 0) {
      h.clock.advance(tickMs > 0 ? Math.ceil(wait / tickMs) * tickMs : wait)
    }
  }
  throw new Error(`dispatch jobs still pending after ${maxRounds} rounds`)
}

/**
 * The database, counting the write transactions that failed in a deadlock
 * (Postgres 40P01) on their way through, whether the driver's error came
 * out as it is or as the cause of Parley's own.
 */
export function watchingDeadlocks(db: ParleyDatabase): {
  db: ParleyDatabase
  deadlocks: () => number
} {
  let deadlocks = 0
  const watched: ParleyDatabase = {
    ...db,
    writeTransaction: async (work) => {
      try {
        return await db.writeTransaction(work)
      } catch (error) {
        if (inDeadlock(error)) deadlocks += 1
        throw error
      }
    },
  }
  return { db: watched, deadlocks: () => deadlocks }
}

function inDeadlock(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === '40P01') return true
  }
  return false
}
