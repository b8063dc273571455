import {
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
  sql,
} from 'kysely'
import { ParleyError } from '../errors.js'
import type { DialectName, ParleyDatabase, ParleySchema } from './schema.js'

/**
 * The column types that differ between dialects, in one place. Everything
 * else in the migrations is dialect-neutral Kysely.
 */
interface DialectTypes {
  /** Auto-incrementing primary key, assigned in insert order. */
  readonly id: ColumnDataType
  /** A reference to such a key. */
  readonly ref: ColumnDataType
  /** An instant: fixed-width UTC text on SQLite, timestamptz on Postgres. */
  readonly timestamp: ColumnDataType
  /** Makes the id column the primary key, numbered in insert order. */
  readonly primaryKey: (
    column: ColumnDefinitionBuilder,
  ) => ColumnDefinitionBuilder
}

const TYPES: Readonly<Record<DialectName, DialectTypes>> = {
  // AUTOINCREMENT: SQLite never reuses an id, even of a deleted row.
  sqlite: {
    id: 'integer',
    ref: 'integer',
    timestamp: 'text',
    primaryKey: (c) => c.primaryKey().autoIncrement(),
  },
  // bigserial brings its own sequence.
  postgres: {
    id: 'bigserial',
    ref: 'bigint',
    timestamp: 'timestamptz',
    primaryKey: (c) => c.primaryKey(),
  },
}

type Db = Kysely<unknown>

function initialSchema(types: DialectTypes): Migration {
  return {
    async up(db: Db) {
      await createConversations(db, types)
      await createMessages(db, types)
      await createDispatchJobs(db, types)
      await createInboundEvents(db, types)
      await createIdempotencyKeys(db, types)
    },
  }
}

async function createConversations(db: Db, t: DialectTypes): Promise<void> {
  await db.schema
    .createTable('conversations')
    .addColumn('id', t.id, t.primaryKey)
    .addColumn('key', 'text', (c) => c.notNull().unique())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('participant_a', 'text', (c) => c.notNull())
    .addColumn('participant_b', 'text', (c) => c.notNull())
    .addColumn('message_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_activity_at', t.timestamp, (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('conversations_activity_idx')
    .on('conversations')
    .columns(['last_activity_at', 'id'])
    .execute()
}

async function createMessages(db: Db, t: DialectTypes): Promise<void> {
  await db.schema
    .createTable('messages')
    .addColumn('id', t.id, t.primaryKey)
    .addColumn('conversation_id', t.ref, (c) =>
      c.notNull().references('conversations.id'),
    )
    .addColumn('direction', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('from_address', 'text', (c) => c.notNull())
    .addColumn('to_address', 'text', (c) => c.notNull())
    .addColumn('from_participant', 'text', (c) => c.notNull())
    .addColumn('to_participant', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('snippet', 'text', (c) => c.notNull())
    .addColumn('attachments', 'text', (c) => c.notNull())
    .addColumn('timestamp', t.timestamp, (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('provider', 'text')
    .addColumn('provider_message_id', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('messages_conversation_idx')
    .on('messages')
    .columns(['conversation_id', 'timestamp', 'id'])
    .execute()
}

async function createDispatchJobs(db: Db, t: DialectTypes): Promise<void> {
  await db.schema
    .createTable('dispatch_jobs')
    .addColumn('id', t.id, t.primaryKey)
    .addColumn('message_id', t.ref, (c) =>
      c.notNull().unique().references('messages.id'),
    )
    .addColumn('family', 'text', (c) => c.notNull())
    .$call((table) => addQueueColumns(table, t))
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute()
  await createQueueIndexes(db, 'dispatch_jobs')
}

async function createInboundEvents(db: Db, t: DialectTypes): Promise<void> {
  await db.schema
    .createTable('inbound_events')
    .addColumn('id', t.id, t.primaryKey)
    .addColumn('family', 'text', (c) => c.notNull())
    .addColumn('provider_message_id', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('message_id', t.ref, (c) => c.references('messages.id'))
    .$call((table) => addQueueColumns(table, t))
    .addColumn('received_at', t.timestamp, (c) => c.notNull())
    .addColumn('processed_at', t.timestamp)
    .addUniqueConstraint('inbound_events_provider_id_key', [
      'family',
      'provider_message_id',
    ])
    .execute()
  await createQueueIndexes(db, 'inbound_events')
}

async function createIdempotencyKeys(db: Db, t: DialectTypes): Promise<void> {
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('expires_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pkey', ['scope', 'key'])
    .execute()
  await db.schema
    .createIndex('idempotency_keys_expiry_idx')
    .on('idempotency_keys')
    .column('expires_at')
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TableBuilder = CreateTableBuilder<string, any>

function addQueueColumns(table: TableBuilder, t: DialectTypes): TableBuilder {
  return table
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('run_at', t.timestamp, (c) => c.notNull())
    .addColumn('locked_until', t.timestamp)
    .addColumn('claim_token', 'text')
    .addColumn('last_error', 'text')
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
}

async function createQueueIndexes(db: Db, table: string): Promise<void> {
  // One index per claim condition: due pending rows, expired leases.
  await db.schema
    .createIndex(`${table}_due_idx`)
    .on(table)
    .columns(['state', 'run_at'])
    .execute()
  await db.schema
    .createIndex(`${table}_lease_idx`)
    .on(table)
    .columns(['state', 'locked_until'])
    .execute()
}

function deliveryReports(types: DialectTypes): Migration {
  return {
    async up(db: Db) {
      await db.schema
        .createTable('pending_status_updates')
        .addColumn('id', types.id, types.primaryKey)
        .addColumn('family', 'text', (c) => c.notNull())
        .addColumn('provider_message_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('received_at', types.timestamp, (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('pending_status_updates_provider_id_idx')
        .on('pending_status_updates')
        .columns(['provider_message_id', 'family'])
        .execute()
      await db.schema
        .createIndex('messages_provider_id_idx')
        .on('messages')
        .column('provider_message_id')
        .execute()
    },
  }
}

// Whole units and epoch milliseconds, not timestamps: the rate-limit
// store does its arithmetic on these columns inside one statement. Idle
// rows are pruned by retention (0004 indexes their last use).
function rateLimitBuckets(): Migration {
  return {
    async up(db: Db) {
      await db.schema
        .createTable('rate_limit_buckets')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('level', 'bigint', (c) => c.notNull())
        .addColumn('updated_at_ms', 'bigint', (c) => c.notNull())
        .execute()
    },
  }
}

// Retention (store/retention.ts) finds the rows it prunes through these,
// oldest first, so that each bounded delete reads only what it removes.
function retentionIndexes(): Migration {
  return {
    async up(db: Db) {
      const indexes: Array<[name: string, table: string, columns: string[]]> = [
        [
          'dispatch_jobs_finished_idx',
          'dispatch_jobs',
          ['state', 'updated_at'],
        ],
        [
          'inbound_events_processed_idx',
          'inbound_events',
          ['state', 'processed_at'],
        ],
        [
          'rate_limit_buckets_idle_idx',
          'rate_limit_buckets',
          ['updated_at_ms'],
        ],
        [
          'pending_status_updates_received_idx',
          'pending_status_updates',
          ['received_at'],
        ],
      ]
      for (const [name, table, columns] of indexes) {
        await db.schema.createIndex(name).on(table).columns(columns).execute()
      }
    },
  }
}

/** The migrations, in order, for one dialect. */
export function migrationsFor(dialect: DialectName): Record<string, Migration> {
  const types = TYPES[dialect]
  return {
    '0001_initial_schema': initialSchema(types),
    '0002_delivery_reports': deliveryReports(types),
    '0003_rate_limit_buckets': rateLimitBuckets(),
    '0004_retention_indexes': retentionIndexes(),
  }
}

class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations
  }
}

function migratorFor(
  db: ParleyDatabase,
  kysely: ParleyDatabase['kysely'] = db.kysely,
): Migrator {
  return new Migrator({
    db: kysely,
    provider: new StaticMigrationProvider(migrationsFor(db.dialect)),
    migrationTableName: 'parley_migrations',
    migrationLockTableName: 'parley_migrations_lock',
    // Kysely looks for its tables in every schema it can see; on Postgres
    // name the one in use, or another deployment's tables would count.
    migrationTableSchema:
      db.dialect === 'postgres' ? (db.schema ?? 'public') : undefined,
  })
}

/**
 * Brings the schema up to date. Safe to call from several processes at
 * once: on Postgres Kysely's migrator takes a lock; on SQLite, where that
 * lock does nothing, the whole run holds the database's write lock.
 */
export async function migrateToLatest(db: ParleyDatabase): Promise<string[]> {
  await requireSchema(db)
  for (let attempt = 1; ; attempt += 1) {
    const { error, results } = await runMigrator(db)
    if (!error) return (results ?? []).map((result) => result.migrationName)
    if (attempt < 4 && isVanishedObject(error)) continue
    const reason = error instanceof Error ? `: ${error.message}` : ''
    throw new ParleyError('unavailable', describeFailure(results) + reason, {
      cause: error,
    })
  }
}

// Kysely's migration lock is a no-op on SQLite (it assumes one process),
// so two processes migrating a fresh file both saw nothing applied and the
// second failed with "table ... already exists". There the run reads and
// applies in one BEGIN IMMEDIATE transaction: a second process waits on
// the write lock (the busy timeout), then finds everything applied. A
// failed run is rolled back whole.
async function runMigrator(db: ParleyDatabase): Promise<MigrationResultSet> {
  if (db.dialect !== 'sqlite') return migratorFor(db).migrateToLatest()
  try {
    return await db.writeTransaction(async (trx) => {
      const outcome = await migratorFor(db, trx).migrateToLatest()
      if (outcome.error !== undefined) throw new RolledBack(outcome)
      return outcome
    })
  } catch (error) {
    if (error instanceof RolledBack) return error.outcome
    throw error
  }
}

// Carries a failed run's outcome out of its transaction, rolling it back.
class RolledBack extends Error {
  constructor(readonly outcome: MigrationResultSet) {
    super('migration rolled back')
  }
}

// Kysely's migrator looks for its tables by scanning every schema of a
// Postgres database; a schema another deployment drops during that scan
// makes it fail with "schema ... does not exist" (3F000) or "relation ...
// does not exist" (42P01) although nothing of ours is missing. Such a
// failure is worth another try.
function isVanishedObject(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === '3F000' || code === '42P01'
}

/**
 * True when the applied migrations are exactly the known ones (none
 * missing, none unknown: a newer code's migration means this code does
 * not know the schema) and Parley's tables are all there. Two cheap
 * queries (the migration table, and one statement that reads no row of
 * each table), no catalogue scan, so readiness probes stay light.
 */
export async function isSchemaCurrent(
  db: Pick<ParleyDatabase, 'dialect' | 'kysely'>,
): Promise<boolean> {
  const known = Object.keys(migrationsFor(db.dialect))
  try {
    const applied = await sql<{ name: string }>`select name from ${sql.table(
      'parley_migrations',
    )}`.execute(db.kysely)
    const names = new Set(applied.rows.map((row) => row.name))
    const exact =
      names.size === known.length && known.every((name) => names.has(name))
    if (!exact) return false
    await sql`${sql.join(
      TABLES.map((table) => sql`select 1 from ${sql.table(table)} where 1 = 0`),
      sql` union all `,
    )}`.execute(db.kysely)
    return true
  } catch (error) {
    // No migration table yet (nothing applied), or a table gone.
    if (isVanishedObject(error) || /no such table/i.test(String(error))) {
      return false
    }
    throw error
  }
}

// Every table of ParleySchema.
const TABLES: readonly (keyof ParleySchema)[] = [
  'rate_limit_buckets',
  'pending_status_updates',
  'conversations',
  'messages',
  'dispatch_jobs',
  'inbound_events',
  'idempotency_keys',
]

function describeFailure(results: MigrationResultSet['results']): string {
  const failed = results?.find((result) => result.status === 'Error')
  return failed
    ? `migration ${failed.migrationName} failed`
    : 'migrations could not run'
}

/** A cheap round trip, for readiness checks. */
export async function ping(db: Pick<ParleyDatabase, 'kysely'>): Promise<void> {
  await sql`select 1`.execute(db.kysely)
}

// Kysely's migrator would create a missing schema, so a typo in one
// instance's schema name would quietly start a second, empty deployment.
// The schema must exist; saying so here names it.
async function requireSchema(db: ParleyDatabase): Promise<void> {
  if (db.dialect !== 'postgres' || db.schema === undefined) return
  const { rows } = await sql<{ found: number }>`
    select 1 as found from pg_namespace where nspname = ${db.schema}
  `.execute(db.kysely)
  if (rows.length === 0) {
    throw new Error(
      `schema ${db.schema} does not exist: create it first (create schema ${db.schema})`,
    )
  }
}
