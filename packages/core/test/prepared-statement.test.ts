import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ParleyDatabase } from '@parley/core'
import { PreparedStatement } from '../src/store/prepared.js'
import { DIALECT_LABEL, testDb } from './support.js'

const NOW = '2024-11-01T12:00:00.000Z'

const insertConversation = new PreparedStatement(
  'insert conversation',
  (db, p: { key: string; a: string; b: string; at: string }) =>
    db
      .insertInto('conversations')
      .values({
        key: p.key,
        channel: 'sms',
        participant_a: p.a,
        participant_b: p.b,
        message_count: 0,
        last_activity_at: p.at,
        created_at: p.at,
      })
      .returning(['id', 'channel', 'message_count']),
)

// One value used twice, and constants between the values.
const touch = new PreparedStatement(
  'touch conversation',
  (db, p: { key: string; at: string }) =>
    db
      .updateTable('conversations')
      .set((eb) => ({
        message_count: eb('message_count', '+', 5),
        last_activity_at: sql<string>`case when ${p.at} > last_activity_at then ${p.at} else last_activity_at end`,
      }))
      .where('key', '=', p.key)
      .returning(['id', 'message_count', 'last_activity_at']),
)

describe(`PreparedStatement on ${DIALECT_LABEL}`, () => {
  let db: ParleyDatabase

  beforeEach(async () => {
    db = await testDb()
  })

  afterEach(async () => {
    await db.close()
  })

  it('runs the same SQL with each call’s values in their places', async () => {
    const first = insertConversation.compile(db.kysely, {
      key: 'k1',
      a: 'a1',
      b: 'b1',
      at: NOW,
    })
    const second = insertConversation.compile(db.kysely, {
      key: 'k2',
      a: 'a2',
      b: 'b2',
      at: NOW,
    })
    expect(second.sql).toBe(first.sql)
    // The builder's own compile of the same query gives the same result.
    const built = db.kysely
      .insertInto('conversations')
      .values({
        key: 'k2',
        channel: 'sms',
        participant_a: 'a2',
        participant_b: 'b2',
        message_count: 0,
        last_activity_at: NOW,
        created_at: NOW,
      })
      .returning(['id', 'channel', 'message_count'])
      .compile()
    expect(second.sql).toBe(built.sql)
    expect(second.parameters).toEqual(built.parameters)

    const { rows } = await insertConversation.execute(db.kysely, {
      key: 'k3',
      a: 'a3',
      b: 'b3',
      at: NOW,
    })
    expect(rows).toEqual([
      { id: expect.anything(), channel: 'sms', message_count: 0 },
    ])
    const stored = await db.kysely
      .selectFrom('conversations')
      .select(['key', 'participant_a', 'participant_b'])
      .execute()
    expect(stored).toEqual([
      { key: 'k3', participant_a: 'a3', participant_b: 'b3' },
    ])
  })

  it('fills a value used twice in both places and keeps the constants', async () => {
    await insertConversation.execute(db.kysely, {
      key: 'k',
      a: 'a',
      b: 'b',
      at: NOW,
    })
    const later = '2024-11-02T00:00:00.000Z'
    const updated = await db.writeTransaction((trx) =>
      touch.execute(trx, { key: 'k', at: later }),
    )
    expect(updated.rows).toHaveLength(1)
    expect(Number(updated.rows[0]!.message_count)).toBe(5)
    const last = updated.rows[0]!.last_activity_at as string | Date
    expect(typeof last === 'string' ? last : last.toISOString()).toBe(later)

    const none = await touch.execute(db.kysely, { key: 'other', at: later })
    expect(none.rows).toEqual([])
  })

  it('refuses a statement that writes a value into its SQL text', () => {
    const inlined = new PreparedStatement(
      'inlined',
      (kysely, p: { key: string }) =>
        kysely
          .selectFrom('conversations')
          .select('id')
          .where('key', '=', sql.raw<string>(String(p.key))),
    )
    expect(() => inlined.compile(db.kysely, { key: 'k' })).toThrow(
      /inlined: a value was written into the SQL text/,
    )
  })

  it('refuses a statement that leaves a value out of its parameters', () => {
    const dropped = new PreparedStatement(
      'dropped',
      (kysely, p: { key: string; limit: number }) =>
        kysely
          .selectFrom('conversations')
          .select('id')
          .where('key', '=', p.key)
          .limit(typeof p.limit === 'number' ? p.limit : 10),
    )
    expect(() => dropped.compile(db.kysely, { key: 'k', limit: 3 })).toThrow(
      /dropped: limit is not passed as a parameter/,
    )
  })
})
