/**
 * Readiness on SQLite watches the file it opened: removed with its folder,
 * replaced, or overwritten with bytes that are not a database, it reports
 * not ready with the reason and logs an error, instead of answering 200
 * while every accepted message would be lost (issue 9).
 */
import { randomBytes } from 'node:crypto'
import {
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { sql } from 'kysely'
import {
  createMockProvider,
  createParley,
  type Parley,
  type ParleyDatabase,
  UnavailableError,
} from '@parley/core'
import { openSqlite } from '@parley/core/sqlite'
import { openBetterSqlite } from '../src/store/better-sqlite.js'
import { ManualClock, smsRequest } from './support.js'

const cleanups: Array<() => Promise<void>> = []

// What a refused write says while storage refuses writes for good.
const REFUSED = /^storage refuses writes until the server is restarted: /

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

// A Parley on a new file in a new folder, or on `options.file`.
async function parleyOnFile(options: { file?: string } = {}): Promise<{
  parley: Parley
  folder: string
  file: string
  errors: string[]
  clock: ManualClock
  db: ParleyDatabase
  close: () => Promise<void>
}> {
  const folder =
    options.file === undefined
      ? mkdtempSync(join(tmpdir(), 'parley-file-'))
      : dirname(options.file)
  const file = options.file ?? join(folder, 'parley.db')
  const db = openSqlite({ filename: file })
  const errors: string[] = []
  const clock = new ManualClock()
  const logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (event: string) => errors.push(event),
  }
  const parley = await createParley({
    db,
    providers: [createMockProvider({ family: 'sms' })],
    logger,
    clock,
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await db.close()
  }
  cleanups.push(async () => {
    await close()
    if (options.file === undefined) {
      rmSync(folder, { recursive: true, force: true })
    }
  })
  return { parley, folder, file, errors, clock, db, close }
}

describe('readiness on a SQLite file', () => {
  it('is not ready once the file and its folder are removed', async () => {
    const { parley, folder, errors } = await parleyOnFile()
    expect(await parley.readiness()).toEqual({ ready: true })

    rmSync(folder, { recursive: true, force: true })

    const report = await parley.readiness()
    expect(report.ready).toBe(false)
    expect(report.reason).toMatch(/^database: the database file .* is gone$/)
    expect(errors).toContain('store.file_check_failed')
  })

  it('logs the problem once while it lasts, not at every probe and write', async () => {
    const { parley, folder, errors, clock } = await parleyOnFile()
    rmSync(folder, { recursive: true, force: true })
    for (let i = 0; i < 3; i += 1) {
      expect((await parley.readiness()).ready).toBe(false)
      clock.advance(1000)
      await expect(parley.send(smsRequest())).rejects.toThrow(REFUSED)
    }
    expect(errors.filter((e) => e === 'store.file_check_failed')).toHaveLength(
      1,
    )
  })

  it('refuses sends (unavailable) once the file is gone, instead of accepting them', async () => {
    const { parley, folder, clock } = await parleyOnFile()
    await parley.send(smsRequest())

    rmSync(folder, { recursive: true, force: true })
    // Writes check the file at most once a second.
    clock.advance(1000)

    const refusal = await parley.send(smsRequest()).catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(UnavailableError)
    expect(refusal).toMatchObject({ lasting: true })
    // Clients are not told where the file is: the log and /readyz are.
    expect((refusal as Error).message).toMatch(REFUSED)
    expect((refusal as Error).message).not.toContain(folder)
  })

  it('refuses a send at once when a readiness probe found the file gone, before the write would check it again', async () => {
    const { parley, folder } = await parleyOnFile()
    await parley.send(smsRequest())
    rmSync(folder, { recursive: true, force: true })

    expect((await parley.readiness()).ready).toBe(false)
    // The clock has not moved: the write's own check is not due.
    await expect(parley.send(smsRequest())).rejects.toThrow(REFUSED)
  })

  it.each([
    ['removed', (file: string) => rmSync(file)],
    [
      'replaced',
      (file: string) => {
        renameSync(file, `${file}.old`)
        writeFileSync(file, '')
      },
    ],
  ])(
    'answers no write committed after the file was %s as stored, even before the next check is due',
    async (_, damage) => {
      const { parley, file } = await parleyOnFile()
      await parley.send(smsRequest())

      damage(file)

      // The clock has not moved: only the check after the commit sees it.
      const first = await parley.send(smsRequest()).catch((e: unknown) => e)
      expect(first).toBeInstanceOf(UnavailableError)
      expect((first as Error).message).toMatch(/may or may not survive/)
      expect(first).toMatchObject({ lasting: false })
      await expect(parley.send(smsRequest())).rejects.toThrow(REFUSED)
      expect((await parley.readiness()).ready).toBe(false)
    },
  )

  it('takes writes through a check that could not look (a stat refused for a moment), reporting not ready only while it lasts', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'parley-file-'))
    const file = join(folder, 'parley.db')
    let refuse = false
    const stat = (path: string) => {
      if (refuse) {
        throw Object.assign(
          new Error(`EACCES: permission denied, stat '${path}'`),
          {
            code: 'EACCES',
          },
        )
      }
      return statSync(path)
    }
    const db = openBetterSqlite({ filename: file }, { stat })
    const clock = new ManualClock()
    const parley = await createParley({
      db,
      providers: [createMockProvider({ family: 'sms' })],
      clock,
    })
    cleanups.push(async () => {
      await db.close()
      rmSync(folder, { recursive: true, force: true })
    })
    await parley.send(smsRequest())

    refuse = true
    // After the commit, and at the check before the write.
    await parley.send(smsRequest())
    clock.advance(1000)
    await parley.send(smsRequest())
    const report = await parley.readiness()
    expect(report.ready).toBe(false)
    expect(report.reason).toMatch(/EACCES/)

    refuse = false
    expect(await parley.readiness()).toEqual({ ready: true })
    clock.advance(1000)
    await parley.send(smsRequest())
    expect((await parley.messages.get('4')).status).toBe('queued')
  })

  it('is not ready, and refuses sends, once the file that held a header was emptied', async () => {
    const { parley, db, file, clock } = await parleyOnFile()
    await parley.send(smsRequest())
    // The first checkpoint gives the file its header (WAL mode keeps a
    // new database's file empty until then).
    await sql`pragma wal_checkpoint(truncate)`.execute(db.kysely)
    expect(await parley.readiness()).toEqual({ ready: true })

    truncateSync(file, 0)

    const report = await parley.readiness()
    expect(report.ready).toBe(false)
    expect(report.reason).toMatch(/was emptied$/)
    clock.advance(1000)
    await expect(parley.send(smsRequest())).rejects.toThrow(REFUSED)
  })

  it('is not ready once another file took its path', async () => {
    const { parley, file } = await parleyOnFile()
    renameSync(file, `${file}.old`)
    writeFileSync(file, '')

    const report = await parley.readiness()
    expect(report.reason).toMatch(/was replaced$/)
  })

  it('is not ready once the file is overwritten with random bytes', async () => {
    const { parley, file } = await parleyOnFile()
    writeFileSync(file, randomBytes(8192))

    const report = await parley.readiness()
    expect(report.ready).toBe(false)
    expect(report.reason).toMatch(/is damaged \(no SQLite header\)$/)
  })
})

// The POSIX locks this process holds on the file, from /proc/locks.
function locksHeld(file: string): string[] {
  const inode = statSync(file).ino
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .filter((line) => {
      const fields = line.trim().split(/\s+/)
      const offset = fields[1] === '->' ? 1 : 0
      const pid = fields[4 + offset]
      const where = fields[5 + offset]
      return (
        pid === String(process.pid) && where?.split(':')[2] === String(inode)
      )
    })
}

describe.skipIf(process.platform !== 'linux')(
  'the file checks and the locks of SQLite (read from /proc/locks, so on Linux only)',
  () => {
    it('keep every lock SQLite holds on the file, through readiness, writes and the close of a second database on it', async () => {
      const { parley, file, clock } = await parleyOnFile()
      await parley.send(smsRequest())
      // In WAL mode the connection keeps a shared lock on the file, by
      // which other processes see the database in use.
      const held = locksHeld(file)
      expect(held).toHaveLength(1)

      // Readiness and writes read the file's header.
      expect(await parley.readiness()).toEqual({ ready: true })
      clock.advance(1000)
      await parley.send(smsRequest())
      expect(locksHeld(file)).toEqual(held)

      // A second database on the same file, checked and closed.
      const second = await parleyOnFile({ file })
      expect(await second.parley.readiness()).toEqual({ ready: true })
      await second.close()
      expect(locksHeld(file)).toEqual(held)
      expect(await parley.readiness()).toEqual({ ready: true })
    })
  },
)
