/**
 * The storage ceilings: Parley's writes done by hand with better-sqlite3
 * in one process, on a database made by Parley's own migrations and opened
 * with the pragmas openSqlite sets. No query builder, no HTTP, no
 * validation: what is left is what SQLite itself costs on this machine.
 */
import Database from 'better-sqlite3'
import { migrateToLatest } from '@parley/core'
import { openSqlite } from '@parley/core/sqlite'

/**
 * Creates `filename` with Parley's schema (its real migrations).
 *
 * @param {string} filename
 */
export async function createSchema(filename) {
  const db = openSqlite({ filename })
  await migrateToLatest(db)
  await db.close()
}

/**
 * Opens `filename` with the pragmas of openSqlite.
 *
 * @param {string} filename
 * @param {'FULL' | 'NORMAL'} synchronous
 */
export function openRaw(filename, synchronous) {
  const db = new Database(filename)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${synchronous}`)
  db.pragma('busy_timeout = 5000')
  db.pragma('foreign_keys = ON')
  return db
}

/** The statements of threading one message, prepared once. */
export function threadingStatements(db) {
  return {
    touch: db.prepare(
      `update conversations set message_count = message_count + 1,
         last_activity_at = max(last_activity_at, ?) where key = ? returning id`,
    ),
    createConversation: db.prepare(
      `insert into conversations (key, channel, participant_a, participant_b,
         message_count, last_activity_at, created_at)
       values (?, ?, ?, ?, 1, ?, ?) returning id`,
    ),
    insertMessage: db.prepare(
      `insert into messages (conversation_id, direction, channel, from_address,
         to_address, from_participant, to_participant, subject, body, snippet,
         attachments, timestamp, status, provider_message_id, created_at,
         updated_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning id`,
    ),
  }
}

/**
 * Threads one normalized message the way Parley does: conversation
 * update-or-insert, then the message row. Returns the message id.
 */
export function threadByHand(
  statements,
  message,
  direction,
  status,
  now,
  providerId,
) {
  const [a, b] = [message.fromParticipant, message.toParticipant].sort()
  const key = `${message.family}:${a}<->${b}`
  const conversation =
    statements.touch.get(message.timestamp, key) ??
    statements.createConversation.get(
      key,
      message.family,
      a,
      b,
      message.timestamp,
      now,
    )
  return statements.insertMessage.get(
    conversation.id,
    direction,
    message.channel,
    message.from,
    message.to,
    message.fromParticipant,
    message.toParticipant,
    message.subject,
    message.body,
    message.body.slice(0, 64),
    JSON.stringify(message.attachments),
    message.timestamp,
    status,
    providerId,
    now,
    now,
  ).id
}
