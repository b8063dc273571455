import { closeSync, fsync, fsyncSync, openSync } from 'node:fs'
import { dirname } from 'node:path'

/** Flushes one open file to stable storage, on libuv's thread pool. */
export type Fsync = (fd: number) => Promise<void>

/** `fs.fsync`, which runs on libuv's thread pool, not the event loop. */
export const threadPoolFsync: Fsync = (fd) =>
  new Promise((resolve, reject) =>
    fsync(fd, (error) => (error ? reject(error) : resolve())),
  )

/**
 * Makes SQLite commits durable off the event loop. The connection runs
 * with `synchronous = NORMAL`, so a commit appends to the WAL without
 * syncing it; `afterCommit` then fsyncs the WAL file on the thread pool
 * and resolves once the commit is on stable storage: the guarantee of
 * `synchronous = FULL`, without stopping the server for each sync.
 *
 * Syncs are shared: commits that finished before a sync started are all
 * covered by it (fsync flushes the whole file); a commit that finishes
 * while a sync runs waits for the next one, which starts when the running
 * one ends and covers every commit made meanwhile.
 *
 * A failed fsync is sticky. The kernel may have dropped the pages it could
 * not write and report success on the next fsync, so nothing committed
 * since the last good sync can be called durable again: every waiting and
 * later write fails, and `check` reports it, until the process restarts
 * (SQLite then recovers from what the WAL really holds).
 */
export class WalSync {
  private fd: number | undefined
  // The sync that runs now, and the one queued to start after it.
  private running: Promise<void> | undefined
  private queued: Promise<void> | undefined
  private failure: Error | undefined
  private closed = false

  constructor(
    private readonly databaseFile: string,
    private readonly fsyncFile: Fsync = threadPoolFsync,
  ) {}

  /** Resolves once every commit made so far is on stable storage. */
  afterCommit(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    if (this.queued) return this.queued
    if (this.running === undefined) return this.start()
    // Only a sync that starts after this commit covers it.
    this.queued = this.running.then(noop, noop).then(() => {
      this.queued = undefined
      return this.start()
    })
    return this.queued
  }

  /** Throws once a sync has failed: commits may have been lost. */
  check(): void {
    if (this.failure) throw this.failure
  }

  /**
   * Waits for the syncs under way, then closes the WAL's descriptor. Call
   * it only after the database connection closed (see `open`).
   */
  async close(): Promise<void> {
    this.closed = true
    await (this.queued ?? this.running)?.catch(noop)
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  private start(): Promise<void> {
    const sync = this.sync().finally(() => {
      if (this.running === sync) this.running = undefined
    })
    this.running = sync
    return sync
  }

  private async sync(): Promise<void> {
    if (this.failure) throw this.failure
    try {
      if (this.closed) throw new Error('the database is closed')
      await this.fsyncFile(this.open())
    } catch (error) {
      this.failure ??= new Error(
        `fsync of the SQLite WAL ${this.databaseFile}-wal failed, so the commits since the last good sync may not survive a power cut; writes are refused until the process restarts: ${(error as Error).message}`,
        { cause: error },
      )
      throw this.failure
    }
  }

  // The WAL exists once the first commit was made. Its descriptor stays
  // open until the database closed: closing any descriptor of a file drops
  // every POSIX lock the process holds on it, and although SQLite locks
  // the database and the -shm file rather than the WAL, a descriptor held
  // open is what keeps that true whatever SQLite does. Once, the folder is
  // synced too (blocking, a single time), so that the WAL's directory
  // entry survives, as SQLite does on the first sync of a new WAL.
  private open(): number {
    if (this.fd !== undefined) return this.fd
    const fd = openSync(`${this.databaseFile}-wal`, 'r')
    this.fd = fd
    const folder = openSync(dirname(this.databaseFile), 'r')
    try {
      fsyncSync(folder)
    } finally {
      closeSync(folder)
    }
    return fd
  }
}

function noop(): void {}
