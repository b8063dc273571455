/**
 * @parley/core/node-sqlite on Node: the dialect's statement wrapper, with a
 * stand-in for node:sqlite (Node 20 has none; the Deno tests run the real
 * module), and the error a runtime without node:sqlite gets.
 */
import { Kysely, sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import {
  type NodeSqliteDatabase,
  NodeSqliteDialect,
  type NodeSqliteStatement,
  type NodeSqliteValue,
  openNodeSqlite,
} from '../src/node-sqlite.js'

interface Call {
  sql: string
  method: 'all' | 'run' | 'iterate'
  parameters: NodeSqliteValue[]
}

// A node:sqlite stand-in that records each call. `columns` says what the
// statement's columns() returns; undefined leaves the method out, as on
// Node 22.5 to 22.15.
function recordingDatabase(columns: readonly unknown[] | undefined) {
  const calls: Call[] = []
  let closed = false
  const statement = (text: string): NodeSqliteStatement => ({
    all: (...parameters) => {
      calls.push({ sql: text, method: 'all', parameters })
      return [{ id: 1 }]
    },
    run: (...parameters) => {
      calls.push({ sql: text, method: 'run', parameters })
      return { changes: 2, lastInsertRowid: 7 }
    },
    iterate: (...parameters) => {
      calls.push({ sql: text, method: 'iterate', parameters })
      return [{ id: 1 }][Symbol.iterator]()
    },
    ...(columns === undefined ? {} : { columns: () => columns }),
  })
  const database: NodeSqliteDatabase = {
    prepare: statement,
    exec: () => undefined,
    close: () => {
      closed = true
    },
  }
  return { database, calls, closed: () => closed }
}

interface Schema {
  items: { id: number; name: string }
}

describe('NodeSqliteDialect', () => {
  it('reads rows when the statement has result columns, binding parameters one by one', async () => {
    const fake = recordingDatabase([{ name: 'id' }])
    const db = new Kysely<Schema>({
      dialect: new NodeSqliteDialect({ database: fake.database }),
    })

    const rows = await db
      .selectFrom('items')
      .select('id')
      .where('name', '=', 'a')
      .where('id', '>', 3)
      .execute()

    expect(rows).toEqual([{ id: 1 }])
    expect(fake.calls).toEqual([
      {
        sql: 'select "id" from "items" where "name" = ? and "id" > ?',
        method: 'all',
        parameters: ['a', 3],
      },
    ])
  })

  it('runs a statement without result columns and reports what it changed', async () => {
    const fake = recordingDatabase([])
    const db = new Kysely<Schema>({
      dialect: new NodeSqliteDialect({ database: fake.database }),
    })

    const result = await db
      .updateTable('items')
      .set({ name: 'b' })
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()

    expect(result.numUpdatedRows).toBe(2n)
    expect(fake.calls.map((call) => call.method)).toEqual(['run'])
  })

  it('tells readers from writers by their text where columns() is missing', async () => {
    const fake = recordingDatabase(undefined)
    const db = new Kysely<Schema>({
      dialect: new NodeSqliteDialect({ database: fake.database }),
    })

    await db.selectFrom('items').selectAll().execute()
    await db.insertInto('items').values({ id: 1, name: 'a' }).execute()
    await db
      .insertInto('items')
      .values({ id: 2, name: 'b' })
      .returning('id')
      .execute()
    await sql`with x as (select 1) select * from x`.execute(db)
    await sql`pragma journal_mode = WAL`.execute(db)

    expect(fake.calls.map((call) => call.method)).toEqual([
      'all',
      'run',
      'all',
      'all',
      'all',
    ])
  })

  it('closes the database when Kysely is destroyed', async () => {
    const fake = recordingDatabase([])
    const db = new Kysely<Schema>({
      dialect: new NodeSqliteDialect({ database: fake.database }),
    })
    await sql`select 1`.execute(db)

    await db.destroy()

    expect(fake.closed()).toBe(true)
  })
})

const hasNodeSqlite = await import('node:sqlite' as string).then(
  () => true,
  () => false,
)

describe('openNodeSqlite', () => {
  it.skipIf(hasNodeSqlite)(
    'rejects on a runtime without node:sqlite, naming what to use instead',
    async () => {
      await expect(openNodeSqlite({ filename: ':memory:' })).rejects.toThrow(
        /no node:sqlite module .*Node 22\.13 or later.*openSqlite from @parley\/core\/sqlite/s,
      )
    },
  )

  it('refuses bad options before loading anything, naming the option', async () => {
    await expect(
      openNodeSqlite({ filename: ':memory:', synchronous: 'OFF' as 'FULL' }),
    ).rejects.toThrow(
      /openNodeSqlite: synchronous must be FULL or NORMAL, got OFF/,
    )
    await expect(openNodeSqlite({ filename: '' })).rejects.toThrow(TypeError)
  })
})
