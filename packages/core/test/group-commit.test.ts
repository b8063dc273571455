import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Kysely } from 'kysely'
import { migrateToLatest } from '@parley/core'
import type { ParleySchema } from '../src/store/schema.js'
import { GroupCommitter } from '../src/store/group-commit.js'
import {
  countingDb,
  type CountingDb,
  DIALECT_LABEL,
  testDb,
  testStore,
} from './support.js'

const NOW = '2024-11-01T12:00:00.000Z'

function insertConversation(key: string) {
  return async (trx: Kysely<ParleySchema>) => {
    const row = await trx
      .insertInto('conversations')
      .values({
        key,
        channel: 'sms',
        participant_a: `${key}-a`,
        participant_b: `${key}-b`,
        message_count: 0,
        last_activity_at: NOW,
        created_at: NOW,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    return String(row.id)
  }
}

async function storedKeys(db: CountingDb): Promise<string[]> {
  const rows = await db.kysely
    .selectFrom('conversations')
    .select('key')
    .orderBy('id')
    .execute()
  return rows.map((row) => row.key)
}

describe(`GroupCommitter on ${DIALECT_LABEL}`, () => {
  let db: CountingDb

  beforeEach(async () => {
    db = countingDb(await testDb())
  })

  afterEach(async () => {
    await db.close()
  })

  it('commits many writes submitted in one tick in one transaction', async () => {
    const committer = new GroupCommitter(db, 512)
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)

    const ids = await Promise.all(
      keys.map((key) => committer.submit(insertConversation(key))),
    )

    expect(db.calls).toBe(1)
    expect(ids).toEqual(keys.map((_, i) => String(i + 1)))
    expect(await storedKeys(db)).toEqual(keys)
  })

  it('commits a write submitted alone in a transaction of its own on Postgres, and in the batch on SQLite', async () => {
    const committer = new GroupCommitter(db, 512)
    const keys = ['k0', 'k1', 'alone', 'k3', 'k4']

    const ids = await Promise.all(
      keys.map((key) =>
        committer.submit(insertConversation(key), '', {
          alone: key === 'alone',
        }),
      ),
    )

    // On Postgres: k0 and k1, then `alone`, then k3 and k4.
    expect(db.calls).toBe(db.dialect === 'postgres' ? 3 : 1)
    expect(ids).toEqual(['1', '2', '3', '4', '5'])
    expect(await storedKeys(db)).toEqual(keys)
  })

  it('runs a batch in the order of its lock keys and gives each caller its own result', async () => {
    const committer = new GroupCommitter(db, 512)
    const submitted = [
      ['conversation:c', 'c'],
      ['', 'unkeyed'],
      ['conversation:a', 'a'],
      ['conversation:b', 'b-1'],
      ['conversation:b', 'b-2'],
    ] as const

    const ids = await Promise.all(
      submitted.map(([lockKey, key]) =>
        committer.submit(insertConversation(key), lockKey),
      ),
    )

    expect(db.calls).toBe(1)
    expect(await storedKeys(db)).toEqual(['unkeyed', 'a', 'b-1', 'b-2', 'c'])
    // Ids follow the run order; each caller gets the id of its own row.
    expect(ids).toEqual(['5', '1', '2', '3', '4'])
  })

  it('splits a large group into batches of at most maxBatch writes', async () => {
    const committer = new GroupCommitter(db, 5)
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`)

    await Promise.all(
      keys.map((key) => committer.submit(insertConversation(key))),
    )

    expect(db.calls).toBe(3)
    expect(await storedKeys(db)).toEqual(keys)
  })

  it('resolves each caller only after its commit is visible to others', async () => {
    const store = await testStore()
    const writer = store.open()
    const reader = store.open()
    try {
      await migrateToLatest(writer)
      const committer = new GroupCommitter(writer, 512)
      const seenByReader = await Promise.all(
        ['a', 'b', 'c'].map((key) =>
          committer.submit(insertConversation(key)).then(async () => {
            const row = await reader.kysely
              .selectFrom('conversations')
              .select('key')
              .where('key', '=', key)
              .executeTakeFirst()
            return row?.key
          }),
        ),
      )

      expect(seenByReader).toEqual(['a', 'b', 'c'])
    } finally {
      await reader.close()
      await writer.close()
      await store.remove()
    }
  })

  it('fails a bad write alone while the rest of its batch commits', async () => {
    const committer = new GroupCommitter(db, 512)
    const boom = new Error('bad write')

    const results = await Promise.allSettled([
      committer.submit(insertConversation('a')),
      committer.submit(async (trx) => {
        await insertConversation('doomed')(trx)
        throw boom
      }),
      committer.submit(insertConversation('b')),
      // A constraint violation fails as well: the key is taken by 'a'.
      committer.submit(insertConversation('a')),
      committer.submit(insertConversation('c')),
    ])

    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ])
    expect((results[1] as PromiseRejectedResult).reason).toBe(boom)
    expect(await storedKeys(db)).toEqual(['a', 'b', 'c'])
    // One try for the batch, then one transaction per write.
    expect(db.calls).toBe(1 + 5)
  })

  it('rejects a lone failing write with its own error', async () => {
    const committer = new GroupCommitter(db, 512)

    await expect(
      committer.submit(async () => {
        throw new Error('nope')
      }),
    ).rejects.toThrow('nope')
    expect(db.calls).toBe(1)
  })

  it('rejects every write when the database itself fails', async () => {
    const committer = new GroupCommitter(db, 512)
    db.before = () => {
      throw new Error('disk on fire')
    }

    const results = await Promise.allSettled([
      committer.submit(insertConversation('a')),
      committer.submit(insertConversation('b')),
    ])

    expect(results.every((r) => r.status === 'rejected')).toBe(true)
    db.before = undefined
    expect(await storedKeys(db)).toEqual([])
  })

  it('forms the next batch from writes submitted during a commit', async () => {
    const committer = new GroupCommitter(db, 512)
    const late: Array<Promise<string>> = []

    const first = committer.submit(async (trx) => {
      // Submitted while this batch's transaction runs: they wait for it.
      late.push(committer.submit(insertConversation('late-1')))
      late.push(committer.submit(insertConversation('late-2')))
      return insertConversation('early')(trx)
    })

    expect(await first).toBe('1')
    expect(await Promise.all(late)).toEqual(['2', '3'])
    expect(db.calls).toBe(2)
  })

  it('drain waits until every submitted write has settled', async () => {
    const committer = new GroupCommitter(db, 2)
    const settled: string[] = []
    for (const key of ['a', 'b', 'c', 'd', 'e']) {
      void committer
        .submit(insertConversation(key))
        .then(() => settled.push(key))
    }
    void committer
      .submit(async () => {
        throw new Error('x')
      })
      .catch(() => settled.push('failed'))

    await committer.drain()

    expect(settled.sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'failed'])
    expect(await storedKeys(db)).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  it('drain resolves at once when nothing is pending', async () => {
    const committer = new GroupCommitter(db, 512)

    await committer.drain()

    expect(db.calls).toBe(0)
  })
})

// A database whose transactions run at once but whose commits become
// durable only when the test says so, as openSqlite's fsync of the WAL.
function durableByHand(dialect: 'sqlite' | 'postgres') {
  const started: string[] = []
  const durable: Array<() => void> = []
  const db = {
    dialect,
    kysely: undefined as unknown as Kysely<ParleySchema>,
    close: async () => undefined,
    async writeTransaction<T>(
      work: (trx: Kysely<ParleySchema>) => Promise<T>,
    ): Promise<T> {
      const result = await work(undefined as unknown as Kysely<ParleySchema>)
      await new Promise<void>((resolve) => durable.push(resolve))
      return result
    },
  }
  const work = (name: string) => async () => {
    started.push(name)
    return name
  }
  return { db, started, durable, work }
}

async function turns(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) {
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

describe('GroupCommitter pipelining', () => {
  it('on SQLite starts the next batch while the previous commit is made durable, and resolves each caller after its own', async () => {
    const fake = durableByHand('sqlite')
    const committer = new GroupCommitter(fake.db, 512)
    let firstDone = false
    const first = committer.submit(fake.work('a')).then((value) => {
      firstDone = true
      return value
    })
    await turns()
    const second = committer.submit(fake.work('b'))
    await turns()
    // b's transaction ran while a's commit was not yet durable.
    expect(fake.started).toEqual(['a', 'b'])
    expect(firstDone).toBe(false)

    // A third waits: two batches at most are under way.
    const third = committer.submit(fake.work('c'))
    await turns()
    expect(fake.started).toEqual(['a', 'b'])

    fake.durable[1]!()
    expect(await second).toBe('b')
    expect(firstDone).toBe(false)
    await turns()
    expect(fake.started).toEqual(['a', 'b', 'c'])
    fake.durable[0]!()
    fake.durable[2]!()
    expect(await Promise.all([first, third])).toEqual(['a', 'c'])
  })

  it('on Postgres runs one batch at a time', async () => {
    const fake = durableByHand('postgres')
    const committer = new GroupCommitter(fake.db, 512)
    const first = committer.submit(fake.work('a'))
    await turns()
    const second = committer.submit(fake.work('b'))
    await turns()
    expect(fake.started).toEqual(['a'])
    fake.durable[0]!()
    await first
    await turns()
    expect(fake.started).toEqual(['a', 'b'])
    fake.durable[1]!()
    await second
  })
})
