/**
 * Deno: Parley on `@parley/core/node-sqlite`, Deno's built-in SQLite.
 * Run by test/deno.test.ts with `deno test`.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { openNodeSqlite } from '@parley/core/node-sqlite'
import { sendReceiveList } from './scenario.ts'

Deno.test('sends, receives and lists on a node:sqlite file', async () => {
  const folder = await Deno.makeTempDir({ prefix: 'parley-deno-' })
  const filename = join(folder, 'nested', 'parley.db')
  try {
    const db = await openNodeSqlite({ filename })
    try {
      await sendReceiveList(db)
    } finally {
      await db.close()
    }
    assert.ok((await Deno.stat(filename)).isFile)
  } finally {
    await Deno.remove(folder, { recursive: true })
  }
})

Deno.test('keeps what it stored when the file is opened again', async () => {
  const folder = await Deno.makeTempDir({ prefix: 'parley-deno-' })
  const filename = join(folder, 'parley.db')
  try {
    const first = await openNodeSqlite({ filename, synchronous: 'NORMAL' })
    await sendReceiveList(first)
    await first.close()

    const again = await openNodeSqlite({ filename })
    try {
      const rows = await again.kysely
        .selectFrom('messages')
        .select(['body'])
        .orderBy('id')
        .execute()
      assert.deepEqual(
        rows.map((row) => row.body),
        ['Your order shipped', 'Thanks!'],
      )
    } finally {
      await again.close()
    }
  } finally {
    await Deno.remove(folder, { recursive: true })
  }
})

Deno.test('refuses a bad option, naming it', async () => {
  await assert.rejects(
    openNodeSqlite({ filename: ':memory:', busyTimeoutMs: -1 }),
    { name: 'RangeError', message: /busyTimeoutMs/ },
  )
})
