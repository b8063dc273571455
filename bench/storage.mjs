/**
 * Storage ceiling of the accept path: what Parley writes for one accepted
 * SMS (conversation update-or-insert, message, dispatch job), done by hand
 * with better-sqlite3 and prepared statements, in transactions of up to 64
 * messages (the accept benchmark's 64 connections bound each group commit
 * to 64 requests), with synchronous=FULL and NORMAL.
 *
 * Usage: node bench/storage.mjs [--tiny] [--out dir] [--messages n]
 *   [--batch n]
 */
import { join } from 'node:path'
import { intOption, parseOptions } from './lib/options.mjs'
import { scratchDir } from './lib/parley-server.mjs'
import {
  createSchema,
  openRaw,
  threadByHand,
  threadingStatements,
} from './lib/raw-sqlite.mjs'
import { RECIPIENT, senderNumber } from './lib/traffic.mjs'
import { saveResult } from './lib/results.mjs'

const options = parseOptions()
const total = intOption(options, 'messages', options.tiny ? 2_000 : 100_000)
const batch = intOption(options, 'batch', 64)
const dir = scratchDir('storage')

function message(n) {
  const from = senderNumber(n)
  return {
    channel: 'sms',
    family: 'sms',
    from,
    to: RECIPIENT,
    fromParticipant: from,
    toParticipant: RECIPIENT,
    subject: null,
    body: `benchmark message ${n}`,
    attachments: [],
    timestamp: '2026-01-01T00:00:00.000Z',
  }
}

async function measure(synchronous) {
  const filename = join(dir, `inserts-${synchronous}.db`)
  await createSchema(filename)
  const db = openRaw(filename, synchronous)
  const statements = threadingStatements(db)
  const insertJob = db.prepare(
    `insert into dispatch_jobs (message_id, family, state, run_at, created_at,
       updated_at) values (?, 'sms', 'pending', ?, ?, ?)`,
  )
  const accept = db.transaction((first, count) => {
    const now = new Date().toISOString()
    for (let n = first; n < first + count; n += 1) {
      const id = threadByHand(
        statements,
        message(n),
        'outbound',
        'queued',
        now,
        null,
      )
      insertJob.run(id, now, now, now)
    }
  })
  // BEGIN IMMEDIATE, as Parley's write transactions.
  const started = performance.now()
  for (let first = 0; first < total; first += batch) {
    accept.immediate(first, Math.min(batch, total - first))
  }
  const seconds = (performance.now() - started) / 1000
  db.close()
  return {
    setup: `better-sqlite3 by hand, synchronous=${synchronous}`,
    messages: total,
    'per commit': batch,
    'messages/s': Math.round(total / seconds),
  }
}

saveResult(options.out, 'storage', {
  settings: { messages: total, batch },
  rows: [await measure('FULL'), await measure('NORMAL')],
})
