import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from './helpers/server-process.js'

// The benchmarks are not part of the test run (they take minutes); this
// runs their harness in its tiny mode so that it cannot rot: every script
// starts, measures, writes its JSON, and the docs page is regenerated.
// The pg-boss comparison (peer) is left to `npm run bench`: its peer polls
// every half second at best.
const work = mkdtempSync(join(tmpdir(), 'parley-bench-smoke-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Result {
  readonly benchmark: string
  readonly rows: ReadonlyArray<Record<string, unknown>>
}

function result(name: string): Result {
  return JSON.parse(readFileSync(join(work, `${name}.json`), 'utf8')) as Result
}

describe('the benchmark harness', () => {
  it('runs every benchmark in tiny mode and regenerates the docs tables', () => {
    const docs = join(work, 'benchmarks.md')
    copyFileSync(join(REPO_ROOT, 'docs/benchmarks.md'), docs)
    const run = spawnSync(
      process.execPath,
      [
        'bench/run-all.mjs',
        '--tiny',
        '--only',
        'accept,storage,drain,e2e,profile',
        '--out',
        work,
        '--docs',
        docs,
      ],
      { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
    )
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)

    const accept = result('accept')
    expect(accept.rows.map((row) => row.setup)).toEqual([
      'bare node:http',
      'Parley, synchronous=FULL (default)',
      'Parley, synchronous=NORMAL',
    ])
    for (const row of accept.rows) {
      expect(row['req/s']).toBeGreaterThan(0)
      expect(row['non-2xx']).toBe(0)
    }
    expect(result('storage').rows[0]?.['messages/s']).toBeGreaterThan(0)
    const drain = result('drain').rows.filter(
      (row) => row.database === 'SQLite',
    )
    expect(drain.map((row) => row.drainer)).toEqual([
      'Parley inbound worker',
      'better-sqlite3 by hand',
    ])
    for (const row of result('e2e').rows) expect(row.failed).toBe(0)
    expect(result('profile').rows.length).toBeGreaterThan(5)

    const page = readFileSync(docs, 'utf8')
    expect(page).toMatch(/\| bare node:http +\|/)
    expect(page).toMatch(/\| Parley inbound worker +\| 100 +\|/)
    expect(page).toMatch(
      /Parley inbound drain \/ hand-written drain, batch 100/,
    )
  }, 90_000)
})
