import { closeSync, openSync, readSync, type Stats, statSync } from 'node:fs'

// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1')

/**
 * A check that the file at `filename` is still the one opened now (same
 * device and inode) and still starts with SQLite's header, for
 * `ParleyDatabase.checkFile`; none for `:memory:`. A file removed or
 * replaced under the running process would take every later commit with
 * it; random bytes over it would fail every later read. Call it right
 * after opening the file.
 */
export function fileCheck(filename: string): (() => void) | undefined {
  if (filename === ':memory:' || filename === '') return undefined
  const opened = statSync(filename)
  return () => {
    const now = statOrUndefined(filename)
    if (now === undefined) {
      throw new Error(`the database file ${filename} is gone`)
    }
    if (now.dev !== opened.dev || now.ino !== opened.ino) {
      throw new Error(`the database file ${filename} was replaced`)
    }
    if (now.size > 0 && !readHeader(filename).equals(SQLITE_HEADER)) {
      throw new Error(
        `the database file ${filename} is damaged (no SQLite header)`,
      )
    }
  }
}

function statOrUndefined(filename: string): Stats | undefined {
  try {
    return statSync(filename)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

function readHeader(filename: string): Buffer {
  const header = Buffer.alloc(SQLITE_HEADER.length)
  const fd = openSync(filename, 'r')
  try {
    readSync(fd, header, 0, header.length, 0)
  } finally {
    closeSync(fd)
  }
  return header
}
