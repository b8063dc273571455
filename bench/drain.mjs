/**
 * Inbound drain: loads 100,000 inbound SMS events (through Parley's own
 * receive(), so the payloads are what webhooks store), starts the inbound
 * worker and times until every event is threaded, on SQLite and Postgres,
 * for each batch size. Beside each SQLite run, the same events drained by
 * hand with better-sqlite3 (same schema, pragmas and batch size).
 *
 * Usage: node bench/drain.mjs [--tiny] [--out dir] [--events n]
 *   [--pg-events n] [--batch 100,1000] [--postgres yes|no]
 */
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createParley } from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { openSqlite } from '@parley/core/sqlite'
import { handDrain } from './lib/hand-drain.mjs'
import { intListOption, intOption, parseOptions } from './lib/options.mjs'
import { scratchDir } from './lib/parley-server.mjs'
import { postgresProblem, throwawayDatabase } from './lib/postgres.mjs'
import { round, saveResult } from './lib/results.mjs'
import { webhookBody } from './lib/traffic.mjs'

const options = parseOptions()
const events = intOption(options, 'events', options.tiny ? 1_000 : 100_000)
// Postgres threads each event with a round trip per statement: 100,000
// events would take minutes per batch size. The rate needs fewer.
const pgEvents = Math.min(
  events,
  intOption(options, 'pg-events', options.tiny ? 1_000 : 20_000),
)
const batches = intListOption(
  options,
  'batch',
  options.tiny ? [100] : [100, 1000],
)
const withPostgres = (options.values.get('postgres') ?? 'yes') !== 'no'
// 10,000 conversations of 10 messages each (fewer in tiny mode).
const conversations = Math.max(1, Math.floor(events / 10))
const dir = scratchDir('drain')

// Receives every event through Parley (workers not started): the template
// database every SQLite run starts from a copy of.
async function loadTemplate() {
  const filename = join(dir, 'template.db')
  const db = openSqlite({ filename })
  const parley = await createParley({ db, providers: [] })
  const chunk = 1000
  for (let first = 0; first < events; first += chunk) {
    const count = Math.min(chunk, events - first)
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        parley.receive(
          JSON.parse(
            webhookBody((first + i) % conversations, `in-${first + i}`),
          ),
          { channel: 'sms' },
        ),
      ),
    )
  }
  await parley.stop()
  await db.close()
  return filename
}

// Starts the workers on `db` (already loaded) and resolves the seconds
// until every event is threaded.
async function timeParleyDrain(db, batchSize, count) {
  const parley = await createParley({
    db,
    providers: [],
    config: { inboundBatchSize: batchSize },
  })
  const started = performance.now()
  await parley.start()
  while (parley.metrics.snapshot().worker_processed < count) await sleep(5)
  const seconds = (performance.now() - started) / 1000
  await parley.stop()
  await db.close()
  return seconds
}

async function sqliteRuns(template, batchSize) {
  const parleyFile = join(dir, `parley-${batchSize}.db`)
  copyFileSync(template, parleyFile)
  const parleySeconds = await timeParleyDrain(
    openSqlite({ filename: parleyFile }),
    batchSize,
    events,
  )
  const handFile = join(dir, `hand-${batchSize}.db`)
  copyFileSync(template, handFile)
  const hand = handDrain(handFile, batchSize)
  if (hand.threaded !== events) {
    throw new Error(`hand drain threaded ${hand.threaded} of ${events}`)
  }
  const parleyRate = events / parleySeconds
  const handRate = events / hand.seconds
  return [
    row(
      'SQLite',
      'Parley inbound worker',
      batchSize,
      events,
      parleyRate,
      handRate,
    ),
    row(
      'SQLite',
      'better-sqlite3 by hand',
      batchSize,
      events,
      handRate,
      handRate,
    ),
  ]
}

function row(database, drainer, batchSize, count, rate, handRate) {
  return {
    database,
    drainer,
    batch: batchSize,
    events: count,
    'events/s': Math.round(rate),
    'of hand-written': handRate === undefined ? '' : round(rate / handRate),
  }
}

// The template's events, copied into a fresh Postgres database.
async function postgresRun(template, batchSize) {
  const database = await throwawayDatabase()
  try {
    const db = openPostgres({ connectionString: database.url })
    const parley = await createParley({ db, providers: [] })
    await parley.stop()
    await copyEvents(template, db)
    const seconds = await timeParleyDrain(db, batchSize, pgEvents)
    return row(
      'Postgres',
      'Parley inbound worker',
      batchSize,
      pgEvents,
      pgEvents / seconds,
    )
  } finally {
    await database.drop()
  }
}

async function copyEvents(template, db) {
  const source = openSqlite({ filename: template })
  const rows = await source.kysely
    .selectFrom('inbound_events')
    .select([
      'family',
      'provider_message_id',
      'payload',
      'state',
      'run_at',
      'received_at',
      'updated_at',
    ])
    .orderBy('id')
    .limit(pgEvents)
    .execute()
  await source.close()
  for (let first = 0; first < rows.length; first += 1000) {
    await db.kysely
      .insertInto('inbound_events')
      .values(rows.slice(first, first + 1000))
      .execute()
  }
}

const template = await loadTemplate()
const rows = []
for (const batchSize of batches)
  rows.push(...(await sqliteRuns(template, batchSize)))
const problem = withPostgres
  ? await postgresProblem()
  : 'skipped (--postgres no)'
if (problem === undefined) {
  for (const batchSize of batches)
    rows.push(await postgresRun(template, batchSize))
} else {
  process.stdout.write(`Postgres drain skipped: ${problem}\n`)
}
saveResult(options.out, 'drain', {
  settings: {
    events,
    postgres_events: pgEvents,
    conversations,
    batches,
    synchronous: 'FULL',
  },
  postgres: problem ?? 'measured',
  rows,
})
