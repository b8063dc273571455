/**
 * examples/two-instances runs as its README says: two servers on one
 * Postgres share the load, and the script reports what each one did.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { POSTGRES_URL } from './helpers/postgres.js'
import { postgresSkipReason } from './helpers/postgres-required.js'
import { REPO_ROOT } from './helpers/server-process.js'

const run = promisify(execFile)
const skip = await postgresSkipReason('the two-instances example')

describe.skipIf(skip !== undefined)('examples/two-instances', () => {
  it('starts two servers on one Postgres, spreads a load over both and prints what each did', async () => {
    const script = join(REPO_ROOT, 'examples/two-instances/index.mjs')
    const { stdout } = await run(
      process.execPath,
      [
        script,
        '--database-url',
        POSTGRES_URL,
        '--sends',
        '60',
        '--webhooks',
        '40',
      ],
      { cwd: REPO_ROOT, timeout: 60_000 },
    )

    const instances = [
      ...stdout.matchAll(
        /^instance ([AB]): accepted (\d+) sends and (\d+) webhooks; sent (\d+) messages .*threaded (\d+) webhooks/gm,
      ),
    ].map((match) =>
      match.slice(1).map((value, i) => (i === 0 ? value : Number(value))),
    )
    expect(instances.map(([name]) => name)).toEqual(['A', 'B'])
    expect(instances.map(([, sends, webhooks]) => [sends, webhooks])).toEqual([
      [30, 20],
      [30, 20],
    ])
    expect(stdout).toMatch(/^total: sent 60 of 60, threaded 40 of 40$/m)
  })
})
