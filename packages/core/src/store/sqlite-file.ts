import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs'
import type { Stats } from 'node:fs'

// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1')

/**
 * Storage that lost commits or may lose the next ones for good: the
 * database file removed, replaced, emptied or damaged, or its WAL removed
 * or not synced. Every later write is refused until the process restarts.
 * Any other error of a check (a stat refused for a moment, say) only says
 * that the check could not run.
 */
export class StorageFault extends Error {
  override readonly name = 'StorageFault'
  /** Always true: see UnavailableError.lasting. */
  readonly lasting = true
}

/** True for a {@link StorageFault}, whichever copy of the package made it. */
export function isStorageFault(error: unknown): boolean {
  return (error as { lasting?: unknown } | null)?.lasting === true
}

/** What `fileCheck` gives: the check, and its release once the database closed. */
export interface FileCheck {
  /**
   * Throws a {@link StorageFault} when the file was removed, replaced,
   * emptied or lost its header; another error when it could not look.
   */
  readonly check: () => void
  /** Call after the database's own connection has closed. */
  readonly close: () => void
}

/**
 * A check that the file at `filename` is still the one opened now (same
 * device and inode) and still starts with SQLite's header, for
 * `ParleyDatabase.checkFile`; none for `:memory:`. A file removed or
 * replaced under the running process would take every later commit with
 * it; random bytes over it would fail every later read. Call it right
 * after opening the file.
 *
 * The header is read through one descriptor kept open until `close`:
 * closing any descriptor of a file drops every POSIX lock the process
 * holds on it, SQLite's included, so none is closed while a connection
 * may hold one. Checks of one file in one process share the descriptor.
 */
export function fileCheck(
  filename: string,
  stat: (path: string) => Stats = statSync,
): FileCheck | undefined {
  if (filename === ':memory:' || filename === '') return undefined
  const reader = openReader(filename)
  const opened = reader.stats
  // In WAL mode a new database's file stays empty until the first
  // checkpoint; once it held a header, it never may be empty again.
  let hadHeader = false
  let closed = false
  return {
    check: () => {
      const now = statOrUndefined(filename, stat)
      if (now === undefined) {
        throw new StorageFault(`the database file ${filename} is gone`)
      }
      if (now.dev !== opened.dev || now.ino !== opened.ino) {
        throw new StorageFault(`the database file ${filename} was replaced`)
      }
      if (now.size === 0) {
        if (hadHeader) {
          throw new StorageFault(`the database file ${filename} was emptied`)
        }
        return
      }
      if (!readHeader(reader.fd).equals(SQLITE_HEADER)) {
        throw new StorageFault(
          `the database file ${filename} is damaged (no SQLite header)`,
        )
      }
      hadHeader = true
    },
    close: () => {
      if (closed) return
      closed = true
      releaseReader(reader)
    },
  }
}

interface Reader {
  readonly key: string
  readonly fd: number
  readonly stats: Stats
  users: number
}

// One read descriptor per file (device and inode) open in this process.
const readers = new Map<string, Reader>()

function openReader(filename: string): Reader {
  const stats = statSync(filename)
  const key = `${stats.dev}:${stats.ino}`
  const shared = readers.get(key)
  if (shared !== undefined) {
    shared.users += 1
    return shared
  }
  const fd = openSync(filename, 'r')
  // The descriptor's own file, should the path have changed in between.
  const own = fstatSync(fd)
  const reader: Reader = { key, fd, stats: own, users: 1 }
  if (own.dev === stats.dev && own.ino === stats.ino) readers.set(key, reader)
  return reader
}

function releaseReader(reader: Reader): void {
  reader.users -= 1
  if (reader.users > 0) return
  if (readers.get(reader.key) === reader) readers.delete(reader.key)
  closeSync(reader.fd)
}

function statOrUndefined(
  filename: string,
  stat: (path: string) => Stats,
): Stats | undefined {
  try {
    return stat(filename)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

function readHeader(fd: number): Buffer {
  const header = Buffer.alloc(SQLITE_HEADER.length)
  readSync(fd, header, 0, header.length, 0)
  return header
}
