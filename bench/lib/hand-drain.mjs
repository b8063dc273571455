/**
 * The inbound drain written by hand with better-sqlite3: claim a batch of
 * due events, thread each into its conversation, mark it done with its
 * message id, one transaction per batch. Same schema, same pragmas, same
 * batch size as Parley's inbound worker; the ceiling it is compared with.
 */
import { openRaw, threadByHand, threadingStatements } from './raw-sqlite.mjs'

/**
 * Drains every pending inbound event of `filename`; resolves how many were
 * threaded and how long it took.
 *
 * @param {string} filename
 * @param {number} batchSize
 * @param {'FULL' | 'NORMAL'} [synchronous]
 */
export function handDrain(filename, batchSize, synchronous = 'FULL') {
  const db = openRaw(filename, synchronous)
  const statements = threadingStatements(db)
  const claim = db.prepare(
    `update inbound_events set state = 'running', locked_until = ?,
       claim_token = 'hand', updated_at = ?
     where id in (select id from inbound_events
       where state = 'pending' and run_at <= ? order by run_at, id limit ?)
     returning id, provider_message_id, payload, attempts`,
  )
  const done = db.prepare(
    `update inbound_events set state = 'done', attempts = ?, locked_until = null,
       claim_token = null, last_error = null, processed_at = ?, updated_at = ?,
       message_id = ? where id = ?`,
  )
  const drainBatch = db.transaction(() => {
    const now = new Date().toISOString()
    const events = claim.all(now, now, now, batchSize)
    for (const event of events) {
      const message = JSON.parse(event.payload)
      const id = threadByHand(
        statements,
        message,
        'inbound',
        'received',
        now,
        event.provider_message_id,
      )
      done.run(event.attempts + 1, now, now, id, event.id)
    }
    return events.length
  })
  const started = performance.now()
  let threaded = 0
  for (;;) {
    const count = drainBatch.immediate()
    threaded += count
    if (count < batchSize) break
  }
  const seconds = (performance.now() - started) / 1000
  db.close()
  return { threaded, seconds }
}
