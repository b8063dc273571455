/**
 * synchronous=FULL on better-sqlite3 (issue 6): the connection runs with
 * synchronous=NORMAL and each write transaction resolves only after an
 * fsync of the WAL made off the event loop has completed. The fsync is
 * replaced here by one the test completes or fails by hand.
 */
import {
  fstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  type ParleyDatabase,
  UnavailableError,
} from '@parley/core'
import { openBetterSqlite } from '../src/store/better-sqlite.js'
import type { SqliteSynchronous } from '../src/store/sqlite-session.js'
import type { Fsync } from '../src/store/wal-sync.js'
import { smsRequest } from './support.js'

const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface FsyncCall {
  readonly fd: number
  readonly complete: () => void
  readonly fail: (error: Error) => void
}

// An fsync that completes or fails only when the test says so.
function manualFsync() {
  const calls: FsyncCall[] = []
  let wake: () => void = () => undefined
  const fsync: Fsync = (fd) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ fd, complete: resolve, fail: reject })
      wake()
    })
  async function called(count: number): Promise<void> {
    while (calls.length < count) {
      await new Promise<void>((resolve) => (wake = resolve))
    }
  }
  return { fsync, calls, called }
}

function openOnFile(
  seams: { fsync?: Fsync },
  synchronous: SqliteSynchronous = 'FULL',
): { db: ParleyDatabase; file: string } {
  const folder = mkdtempSync(join(tmpdir(), 'parley-wal-'))
  const file = join(folder, 'parley.db')
  const db = openBetterSqlite({ filename: file, synchronous }, seams)
  cleanups.push(async () => {
    await db.close()
    rmSync(folder, { recursive: true, force: true })
  })
  return { db, file }
}

// Tracks whether a promise settled, without letting it reject unhandled.
function watch<T>(promise: Promise<T>): { settled: () => boolean } {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  return { settled: () => settled }
}

// A few turns of the event loop: anything already able to settle has.
async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) {
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

function insert(db: ParleyDatabase, value: number): Promise<void> {
  return db.writeTransaction(async (trx) => {
    await sql`insert into t (x) values (${value})`.execute(trx)
  })
}

async function count(db: ParleyDatabase): Promise<number> {
  const { rows } = await sql<{
    n: number
  }>`select count(*) as n from t`.execute(db.kysely)
  return rows[0]!.n
}

describe('synchronous=FULL by a WAL fsync off the event loop', () => {
  it('resolves a write only after the fsync of its commit, runs two fsyncs at once, shares the next among the commits made meanwhile, and answers in order', async () => {
    const manual = manualFsync()
    const { db, file } = openOnFile({ fsync: manual.fsync })
    await sql`create table t (x integer)`.execute(db.kysely)

    const first = insert(db, 1)
    const firstState = watch(first)
    await manual.called(1)
    // The fsync is of the WAL, after the commit.
    expect(fstatSync(manual.calls[0]!.fd).ino).toBe(statSync(`${file}-wal`).ino)
    expect(await count(db)).toBe(1)
    await settle()
    expect(firstState.settled()).toBe(false)

    // Committed while the first fsync runs: a second one starts at once.
    const second = insert(db, 2)
    const secondState = watch(second)
    await manual.called(2)
    // Committed while two run: they wait for, and share, the next one.
    const third = insert(db, 3)
    const fourth = insert(db, 4)
    const later = watch(Promise.all([third, fourth]))
    expect(await count(db)).toBe(4)
    await settle()
    expect(manual.calls).toHaveLength(2)

    // The second fsync ends first: its write still waits for the first.
    manual.calls[1]!.complete()
    await manual.called(3)
    await settle()
    expect(secondState.settled()).toBe(false)
    expect(firstState.settled()).toBe(false)

    manual.calls[0]!.complete()
    await Promise.all([first, second])
    await settle()
    expect(later.settled()).toBe(false)

    manual.calls[2]!.complete()
    await Promise.all([third, fourth])
    expect(manual.calls).toHaveLength(3)
  })

  it('fails the writes of a failed fsync, refuses every later write, and says why', async () => {
    const manual = manualFsync()
    const { db } = openOnFile({ fsync: manual.fsync })
    await sql`create table t (x integer)`.execute(db.kysely)

    const first = insert(db, 1)
    await manual.called(1)
    const second = insert(db, 2)
    await manual.called(2)
    expect(await count(db)).toBe(2)
    const io = Object.assign(new Error('EIO: i/o error, fsync'), {
      code: 'EIO',
    })
    manual.calls[0]!.fail(io)

    await expect(first).rejects.toThrow(/fsync of the SQLite WAL .* failed/)
    // The second fsync has not even ended: an earlier failure fails it.
    await expect(second).rejects.toThrow(/EIO/)
    // Nothing more is committed: the work never runs.
    let ran = false
    await expect(
      db.writeTransaction(async () => {
        ran = true
      }),
    ).rejects.toThrow(/fsync of the SQLite WAL/)
    expect(ran).toBe(false)
    expect(manual.calls).toHaveLength(2)
    // A later fsync that succeeds changes nothing.
    manual.calls[1]!.complete()
    expect(() => db.checkFile?.()).toThrow(/writes are refused/)
  })

  it('has Parley refuse the write (unavailable) and report not ready after a failed fsync', async () => {
    // Migrations commit through writeTransaction too: they sync fine.
    let broken = false
    const failing: Fsync = async () => {
      if (broken) throw new Error('EIO: i/o error, fsync')
    }
    const { db } = openOnFile({ fsync: failing })
    const errors: string[] = []
    const parley = await createParley({
      db,
      providers: [createMockProvider({ family: 'sms' })],
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: (event: string) => errors.push(event),
      },
    })
    broken = true

    await expect(parley.send(smsRequest())).rejects.toThrow(UnavailableError)
    expect(errors).toContain('store.write_failed')
    const report = await parley.readiness()
    expect(report.ready).toBe(false)
    expect(report.reason).toMatch(/fsync of the SQLite WAL .* failed/)
    await parley.stop()
  })

  it('answers a send only once the fsync of its commit completed', async () => {
    const manual = manualFsync()
    // Migrations commit through writeTransaction too: let theirs through.
    let holding = false
    const fsync: Fsync = (fd) =>
      holding ? manual.fsync(fd) : Promise.resolve()
    const { db } = openOnFile({ fsync })
    const parley = await createParley({
      db,
      providers: [createMockProvider({ family: 'sms' })],
    })
    holding = true

    const send = parley.send(smsRequest())
    const state = watch(send)
    await manual.called(1)
    await settle()
    expect(state.settled()).toBe(false)

    manual.calls[0]!.complete()
    expect((await send).replayed).toBe(false)
    holding = false
    await parley.stop()
  })

  it.each([
    // FULL on a file is kept by the fsync, not by SQLite: NORMAL (1).
    ['FULL', 'file', 1],
    ['NORMAL', 'file', 1],
    // In memory nothing is synced; SQLite keeps the level asked for.
    ['FULL', ':memory:', 2],
  ] as const)(
    'runs the connection of synchronous=%s on %s with PRAGMA synchronous = %i',
    async (synchronous, where, expected) => {
      const db =
        where === 'file'
          ? openOnFile({}, synchronous).db
          : openBetterSqlite({ filename: ':memory:', synchronous })
      if (where !== 'file') cleanups.push(() => db.close())
      const { rows } = await sql<{
        synchronous: number
      }>`pragma synchronous`.execute(db.kysely)
      expect(rows[0]!.synchronous).toBe(expected)
    },
  )

  it('syncs nothing for synchronous=NORMAL', async () => {
    const manual = manualFsync()
    const { db } = openOnFile({ fsync: manual.fsync }, 'NORMAL')
    await sql`create table t (x integer)`.execute(db.kysely)
    await insert(db, 1)
    expect(manual.calls).toHaveLength(0)
  })
  it('syncs the WAL SQLite writes, beside the file a symbolic link leads to, whatever lies beside the link', async () => {
    const manual = manualFsync()
    const folder = mkdtempSync(join(tmpdir(), 'parley-wal-link-'))
    mkdirSync(join(folder, 'real'))
    mkdirSync(join(folder, 'link'))
    const real = join(folder, 'real', 'parley.db')
    const link = join(folder, 'link', 'parley.db')
    writeFileSync(real, '')
    symlinkSync(real, link)
    // A leftover WAL beside the link, which SQLite does not use.
    writeFileSync(`${link}-wal`, '')
    const db = openBetterSqlite({ filename: link }, { fsync: manual.fsync })
    cleanups.push(async () => {
      await db.close()
      rmSync(folder, { recursive: true, force: true })
    })
    await sql`create table t (x integer)`.execute(db.kysely)

    const write = insert(db, 1)
    await manual.called(1)
    manual.calls[0]!.complete()
    await write

    expect(fstatSync(manual.calls[0]!.fd).ino).toBe(statSync(`${real}-wal`).ino)
  })

  it('syncs nothing for a transaction that changed no row, and syncs one that did', async () => {
    const manual = manualFsync()
    const { db } = openOnFile({ fsync: manual.fsync })
    await sql`create table t (x integer)`.execute(db.kysely)
    await sql`insert into t (x) values (0)`.execute(db.kysely)

    // A poll that finds nothing: reads, and an update that matches no row.
    await db.writeTransaction(async (trx) => {
      await sql`select count(*) from t`.execute(trx)
      await sql`update t set x = 1 where x = 99`.execute(trx)
    })
    expect(manual.calls).toHaveLength(0)

    const write = insert(db, 1)
    await manual.called(1)
    manual.calls[0]!.complete()
    await write
  })

  it('tells the callers of a batch committed before its fsync failed that the fate of their writes is unknown, and never commits them twice', async () => {
    let failing = false
    const fsync: Fsync = async () => {
      if (failing) throw new Error('EIO: i/o error, fsync')
    }
    const { db } = openOnFile({ fsync })
    const parley = await createParley({
      db,
      providers: [createMockProvider({ family: 'sms' })],
    })
    failing = true

    const sends = await Promise.allSettled(
      Array.from({ length: 5 }, (_, n) =>
        parley.send(smsRequest({ from: `+1804555${1000 + n}` })),
      ),
    )

    for (const outcome of sends) {
      expect(outcome.status).toBe('rejected')
      const error = (outcome as PromiseRejectedResult).reason
      expect(error).toBeInstanceOf(UnavailableError)
      expect(error.message).toMatch(/may or may not survive/)
    }
    const { rows } = await sql<{
      n: number
    }>`select count(*) as n from messages`.execute(db.kysely)
    expect(rows[0]!.n).toBe(5)
    await expect(parley.send(smsRequest())).rejects.toThrow(
      /refuses writes until the server is restarted/,
    )
    await parley.stop()
  })

  it('refuses writes once the WAL file was removed while the database is open', async () => {
    const { db, file } = openOnFile({ fsync: async () => undefined })
    await sql`create table t (x integer)`.execute(db.kysely)
    await insert(db, 1)
    expect(() => db.checkFile?.()).not.toThrow()

    rmSync(`${file}-wal`)

    expect(() => db.checkFile?.()).toThrow(/WAL .* was removed/)
    let ran = false
    await expect(
      db.writeTransaction(async () => {
        ran = true
      }),
    ).rejects.toThrow(/was removed/)
    expect(ran).toBe(false)
  })

  it('does not answer a write committed after the WAL was removed as durable, even before a file check', async () => {
    const { db, file } = openOnFile({ fsync: async () => undefined })
    await sql`create table t (x integer)`.execute(db.kysely)
    await insert(db, 1)

    rmSync(`${file}-wal`)

    const committed = insert(db, 2)
    await expect(committed).rejects.toThrow(
      /committed, but .*WAL .* was removed/,
    )
    await expect(committed).rejects.toMatchObject({ committed: true })
    await expect(insert(db, 3)).rejects.toThrow(/refused: .*was removed/)
    expect(() => db.checkFile?.()).toThrow(/WAL .* was removed/)
  })
})
