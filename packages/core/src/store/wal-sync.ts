import {
  closeSync,
  fstatSync,
  fsync,
  fsyncSync,
  openSync,
  realpathSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { errorMessage } from '../util/logger.js'
import { StorageFault } from './sqlite-file.js'

/** Flushes one open file to stable storage, on libuv's thread pool. */
export type Fsync = (fd: number) => Promise<void>

/** `fs.fsync`, which runs on libuv's thread pool, not the event loop. */
export const threadPoolFsync: Fsync = (fd) =>
  new Promise((resolve, reject) =>
    fsync(fd, (error) => (error ? reject(error) : resolve())),
  )

/**
 * A write that could not be made durable because a sync of the WAL failed,
 * or the database's files were found removed or damaged (now or before).
 * `committed` tells the two cases apart: true when the write was committed
 * and only its sync failed, so that it may or may not survive a restart;
 * false when it was refused before it ran.
 */
export class DurabilityError extends Error {
  override readonly name = 'DurabilityError'
  constructor(
    message: string,
    readonly committed: boolean,
    options: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** True for a write that was committed but whose sync failed. */
export function isCommittedNotDurable(error: unknown): boolean {
  return error instanceof DurabilityError && error.committed
}

/** A write that committed, but `cause` says it may not survive a restart. */
export function committedNotDurable(cause: unknown): DurabilityError {
  return new DurabilityError(
    `the write was committed, but ${errorMessage(cause)}`,
    true,
    { cause },
  )
}

/** A write refused before it ran, because of `fault` found earlier. */
export function refusedWrite(fault: Error): DurabilityError {
  return new DurabilityError(`the write was refused: ${fault.message}`, false, {
    cause: fault,
  })
}

// Syncs of the WAL that may run at once (see syncAfterCommit).
const MAX_RUNNING = 2

/**
 * Makes SQLite commits durable off the event loop. The connection runs
 * with `synchronous = NORMAL`, so a commit appends to the WAL without
 * syncing it; `afterCommit` then fsyncs the WAL file on the thread pool
 * and resolves once the commit is on stable storage: the guarantee of
 * `synchronous = FULL`, without stopping the server for each sync.
 *
 * A commit is covered by any sync that starts after it (fsync flushes the
 * whole file). Each commit starts a sync of its own while fewer than two
 * run; commits made while two run share the next one, which starts when
 * one of them ends. Syncs resolve in the order they started.
 *
 * A failed fsync is sticky. The kernel may have dropped the pages it could
 * not write and report success on the next fsync, so nothing committed
 * since the last good sync can be called durable again: every waiting and
 * later write fails, and `check` reports it, until the process restarts
 * (SQLite then recovers from what the WAL really holds).
 */
export class WalSync {
  private fd: number | undefined
  // The WAL file synced, known once it is opened.
  private walFile: string | undefined
  // Syncs under way (at most MAX_RUNNING), the one queued to start when
  // one of them ends, and the last one started: each resolves only after
  // every sync started before it, so that writes are answered in order.
  private running = 0
  private queued: Promise<void> | undefined
  private last: Promise<void> = Promise.resolve()
  private startNext: (() => void) | undefined
  private failure: Error | undefined
  private closed = false

  constructor(
    private readonly databaseFile: string,
    private readonly fsyncFile: Fsync = threadPoolFsync,
  ) {}

  /** Resolves once every commit made so far is on stable storage. */
  afterCommit(): Promise<void> {
    return this.syncAfterCommit().catch((error: unknown) => {
      throw committedNotDurable(error)
    })
  }

  // A commit is covered by any sync that starts after it. Up to
  // MAX_RUNNING syncs run at once: a group commit's next batch commits
  // while the previous batch's sync runs (GroupCommitter), and waiting for
  // that sync to end before starting its own would make every write wait
  // for up to two syncs. Commits made while that many run share the next.
  private syncAfterCommit(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    if (this.queued) return this.queued
    if (this.running < MAX_RUNNING) return this.start()
    const queued = new Promise<void>((resolve) => {
      this.startNext = resolve
    }).then(() => {
      this.queued = undefined
      return this.start()
    })
    this.queued = queued
    return queued
  }

  /** Throws once a sync has failed: commits may have been lost. */
  check(): void {
    if (this.failure) throw this.failure
  }

  /** Throws, before a write runs, once a sync has failed (see check). */
  assertWritable(): void {
    if (this.failure) throw refusedWrite(this.failure)
  }

  /**
   * Also fails, for good, once the WAL file was removed (or renamed over)
   * while the database is open: SQLite goes on writing into the unlinked
   * file, and everything committed since would be gone at the next start.
   * For the periodic file check; each sync checks it too (see sync).
   */
  checkLinked(): void {
    if (this.fd !== undefined && !this.failure && this.unlinked(this.fd)) {
      this.failure = this.removedError()
    }
    this.check()
  }

  /**
   * Waits for the syncs under way, then closes the WAL's descriptor. Call
   * it only after the database connection closed (see `open`).
   */
  async close(): Promise<void> {
    this.closed = true
    await this.queued?.catch(noop)
    await this.last
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  private start(): Promise<void> {
    this.running += 1
    const own = this.sync().finally(() => {
      this.running -= 1
      const startNext = this.startNext
      this.startNext = undefined
      startNext?.()
    })
    // In order, and failed when any earlier sync failed: a later sync's
    // success says nothing of pages an earlier one could not write (the
    // kernel reports a write-back error to one fsync only), and the WAL is
    // read back only up to its first missing frame.
    own.catch(noop)
    const ordered = this.last
      .then(() => {
        if (this.failure) throw this.failure
        return own
      })
      .then(() => {
        if (this.failure) throw this.failure
      })
    this.last = ordered.catch(noop)
    return ordered
  }

  private async sync(): Promise<void> {
    if (this.failure) throw this.failure
    let fd: number
    try {
      if (this.closed) throw new Error('the database is closed')
      fd = this.open()
      await this.fsyncFile(fd)
    } catch (error) {
      this.failure ??= new StorageFault(
        `fsync of the SQLite WAL ${this.walFile ?? `${this.databaseFile}-wal`} failed, so the commits since the last good sync may not survive a power cut; writes are refused until the process restarts: ${errorMessage(error)}`,
        { cause: error },
      )
      throw this.failure
    }
    // A commit synced into a WAL no longer linked (removed or renamed over)
    // is gone at the next start: not durable, whatever fsync said.
    if (this.unlinked(fd)) {
      this.failure ??= this.removedError()
      throw this.failure
    }
  }

  private unlinked(fd: number): boolean {
    return fstatSync(fd).nlink === 0
  }

  private removedError(): Error {
    return new StorageFault(
      `the SQLite WAL ${this.walFile} was removed while the database was open, so commits since may not survive a restart; writes are refused until the process restarts`,
    )
  }

  // The WAL exists once the first commit was made. Its descriptor stays
  // open until the database closed: closing any descriptor of a file drops
  // every POSIX lock the process holds on it, and although SQLite locks
  // the database and the -shm file rather than the WAL, a descriptor held
  // open is what keeps that true whatever SQLite does. SQLite keeps its WAL
  // beside the database file the path leads to (through symbolic links),
  // so that is the one opened. Once, the folder is synced too, as SQLite
  // does on the first sync of a new WAL, and like SQLite on a best-effort
  // basis: a folder that cannot be opened for reading (mode -wx) or synced
  // does not stop the database.
  private open(): number {
    if (this.fd !== undefined) return this.fd
    const databaseFile = realpathSync(this.databaseFile)
    this.walFile = `${databaseFile}-wal`
    const fd = openSync(this.walFile, 'r')
    this.fd = fd
    syncFolder(dirname(databaseFile))
    return fd
  }
}

function syncFolder(folder: string): void {
  let fd: number | undefined
  try {
    fd = openSync(folder, 'r')
    fsyncSync(fd)
  } catch {
    // Best effort, as SQLite's own folder sync.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

function noop(): void {}
