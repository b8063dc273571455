import type { Kysely } from 'kysely'
import { PreparedStatement } from '../store/prepared.js'
import type {
  DialectName,
  ParleySchema,
  QueueColumns,
  QueueState,
} from '../store/schema.js'

/** The tables that hold durable queues. */
export type QueueTable = 'dispatch_jobs' | 'inbound_events'

// The queue columns of either table, seen on their own: every function
// below touches only these.
type QueueDb = { [K in QueueTable]: QueueColumns }

// The one place that narrows a full schema to its queue columns.
function asQueueDb(db: Kysely<ParleySchema>): Kysely<QueueDb> {
  return db as unknown as Kysely<QueueDb>
}

/** Where and how a claim runs. */
export interface ClaimOptions {
  readonly table: QueueTable
  readonly dialect: DialectName
  /** Now, UTC ISO-8601. */
  readonly now: string
  /** The end of the lease given to the claimed rows. */
  readonly leaseUntil: string
  /** Most rows to claim. */
  readonly limit: number
  /** Marks the rows as this worker's, so that only it can settle them. */
  readonly token: string
}

/**
 * Claims up to `limit` rows whose lease expired (a worker crashed holding
 * them) or that are due (pending and past `run_at`), oldest first, setting
 * their lease. On Postgres the rows are locked with SKIP LOCKED, so
 * concurrent claimers never take the same row.
 */
export async function claimDue<Row>(
  db: Kysely<ParleySchema>,
  options: ClaimOptions,
): Promise<Row[]> {
  const expired = await claimWhere<Row>(db, options, options.limit, 'running')
  const room = options.limit - expired.length
  const due =
    room > 0 ? await claimWhere<Row>(db, options, room, 'pending') : []
  // UPDATE … RETURNING gives rows in no set order; hand them out oldest
  // first.
  return [...expired, ...due].sort(
    (a, b) => Number(a.id) - Number(b.id),
  ) as Row[]
}

// One claim condition per statement, each matching one index
// (`<table>_due_idx` on state, run_at; `<table>_lease_idx` on state,
// locked_until), so the oldest rows are read off the index in order. One
// statement with both conditions OR-ed had to collect and sort every
// pending row on each claim, which grew with the backlog
// (docs/benchmarks.md).
async function claimWhere<Row>(
  db: Kysely<ParleySchema>,
  options: ClaimOptions,
  limit: number,
  state: 'pending' | 'running',
): Promise<Array<Row & { id: number | string }>> {
  const { rows } = await claimStatement(
    options.table,
    state,
    options.dialect,
  ).execute(db, {
    now: options.now,
    limit,
    leaseUntil: options.leaseUntil,
    token: options.token,
  })
  return rows as Array<Row & { id: number | string }>
}

// The claim of each table, state and dialect, built once per database
// (see PreparedStatement): workers run it on every poll.
const claimStatements = new Map<string, ClaimStatement>()

type ClaimStatement = PreparedStatement<
  { now: string; limit: number; leaseUntil: string; token: string },
  unknown
>

function claimStatement(
  table: QueueTable,
  state: 'pending' | 'running',
  dialect: DialectName,
): ClaimStatement {
  const name = `claim ${state} ${table} on ${dialect}`
  let statement = claimStatements.get(name)
  if (statement) return statement
  const column = state === 'pending' ? 'run_at' : 'locked_until'
  statement = new PreparedStatement(name, (db, p) => {
    const q = asQueueDb(db)
    const rows = q
      .selectFrom(table)
      .select('id')
      .where('state', '=', state)
      .where(column, '<=', p.now)
      .orderBy(column)
      .orderBy('id')
      .limit(p.limit)
      .$if(dialect === 'postgres', (qb) => qb.forUpdate().skipLocked())
    return q
      .updateTable(table)
      .set({
        state: 'running',
        locked_until: p.leaseUntil,
        claim_token: p.token,
        updated_at: p.now,
      })
      .where('id', 'in', rows)
      .returningAll()
  })
  claimStatements.set(name, statement)
  return statement
}

/** How a claimed row is settled. */
export interface Settlement {
  readonly table: QueueTable
  readonly id: string
  readonly token: string
  readonly now: string
  /** The row's attempt count after this attempt. */
  readonly attempts: number
}

/** Marks a claimed row done. False when the claim was lost meanwhile. */
export function completeRow(
  db: Kysely<ParleySchema>,
  settlement: Settlement,
): Promise<boolean> {
  return settle(db, settlement, 'done', { last_error: null })
}

/** Puts a claimed row back in the queue, due at `runAt`. */
export function rescheduleRow(
  db: Kysely<ParleySchema>,
  settlement: Settlement,
  runAt: string,
  error: string,
): Promise<boolean> {
  return settle(db, settlement, 'pending', { run_at: runAt, last_error: error })
}

/** Moves a claimed row to the dead letters. */
export function deadLetterRow(
  db: Kysely<ParleySchema>,
  settlement: Settlement,
  error: string,
): Promise<boolean> {
  return settle(db, settlement, 'dead', { last_error: error })
}

async function settle(
  db: Kysely<ParleySchema>,
  settlement: Settlement,
  state: QueueState,
  extra: { run_at?: string; last_error: string | null },
): Promise<boolean> {
  const statement = settleStatement(
    settlement.table,
    state,
    extra.run_at !== undefined,
  )
  const result = await statement.execute(db, {
    runAt: extra.run_at ?? null,
    lastError: extra.last_error,
    attempts: settlement.attempts,
    now: settlement.now,
    id: Number(settlement.id),
    token: settlement.token,
  })
  return Number(result.numAffectedRows) === 1
}

// The settlements of each table and state, built once per database (see
// PreparedStatement): workers run one for every row.
const settleStatements = new Map<string, SettleStatement>()

type SettleStatement = PreparedStatement<
  {
    runAt: string | null
    lastError: string | null
    attempts: number
    now: string
    id: number
    token: string
  },
  unknown
>

function settleStatement(
  table: QueueTable,
  state: QueueState,
  withRunAt: boolean,
): SettleStatement {
  const name = `settle ${table} as ${state}${withRunAt ? ' with run_at' : ''}`
  let statement = settleStatements.get(name)
  if (statement) return statement
  statement = new PreparedStatement(name, (db, p) =>
    asQueueDb(db)
      .updateTable(table)
      .set({
        ...(withRunAt ? { run_at: p.runAt as string } : {}),
        last_error: p.lastError,
        state,
        attempts: p.attempts,
        locked_until: null,
        claim_token: null,
        updated_at: p.now,
      })
      .where('id', '=', p.id)
      .where('state', '=', 'running')
      .where('claim_token', '=', p.token),
  )
  settleStatements.set(name, statement)
  return statement
}

/**
 * Gives back every row this worker still holds, due now, so that another
 * worker (or this one after a restart) takes them without waiting out the
 * lease. Used on shutdown.
 */
export async function releaseClaims(
  db: Kysely<ParleySchema>,
  table: QueueTable,
  token: string,
  now: string,
): Promise<number> {
  const result = await asQueueDb(db)
    .updateTable(table)
    .set({
      state: 'pending',
      run_at: now,
      locked_until: null,
      claim_token: null,
      updated_at: now,
    })
    .where('state', '=', 'running')
    .where('claim_token', '=', token)
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}

/**
 * Extends the lease of rows this worker is still running, so that a job
 * whose settlement waits (a slow commit, a stalled event loop) is not
 * claimed a second time while its call is in flight. Rows the worker lost
 * (another token) are left alone. Returns how many leases were extended.
 */
export async function renewClaims(
  db: Kysely<ParleySchema>,
  table: QueueTable,
  options: { token: string; ids: readonly string[]; leaseUntil: string },
): Promise<number> {
  if (options.ids.length === 0) return 0
  const result = await asQueueDb(db)
    .updateTable(table)
    .set({ locked_until: options.leaseUntil })
    .where('id', 'in', options.ids.map(Number))
    .where('state', '=', 'running')
    .where('claim_token', '=', options.token)
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}
