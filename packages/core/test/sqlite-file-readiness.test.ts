/**
 * Readiness on SQLite watches the file it opened: removed with its folder,
 * replaced, or overwritten with bytes that are not a database, it reports
 * not ready with the reason and logs an error, instead of answering 200
 * while every accepted message would be lost (issue 9).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  type Parley,
  UnavailableError,
} from '@parley/core'
import { openSqlite } from '@parley/core/sqlite'
import { ManualClock, smsRequest } from './support.js'

const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function parleyOnFile(): Promise<{
  parley: Parley
  folder: string
  file: string
  errors: string[]
  clock: ManualClock
}> {
  const folder = mkdtempSync(join(tmpdir(), 'parley-file-'))
  const file = join(folder, 'parley.db')
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
  cleanups.push(async () => {
    await db.close()
    rmSync(folder, { recursive: true, force: true })
  })
  return { parley, folder, file, errors, clock }
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

  it('refuses sends (unavailable) once the file is gone, instead of accepting them', async () => {
    const { parley, folder, clock } = await parleyOnFile()
    await parley.send(smsRequest())

    rmSync(folder, { recursive: true, force: true })
    // Writes check the file at most once a second.
    clock.advance(1000)

    await expect(parley.send(smsRequest())).rejects.toThrow(UnavailableError)
    await expect(parley.send(smsRequest())).rejects.toThrow(/is gone/)
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
