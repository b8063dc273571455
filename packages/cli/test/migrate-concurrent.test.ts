/**
 * Several `parley migrate` processes on one fresh SQLite file at once (as
 * when servers start next to a deploy's migrate): each succeeds, and the
 * migrations are applied once.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { makeTempDir } from '../../../test/helpers/server-process.js'
import { assertBuilt, runCli } from './run-cli.js'

const processes = 6

describe('parley migrate run by several processes at once', () => {
  it('succeeds in every process and applies each migration once', async () => {
    assertBuilt()
    // Two fresh files, so that a race has two chances to show.
    for (const round of [1, 2]) {
      const file = join(makeTempDir(), `race-${round}.db`)

      const results = await Promise.all(
        Array.from({ length: processes }, () =>
          runCli(['migrate', '--database-url', file, '--json']),
        ),
      )

      for (const result of results) {
        expect(result.stderr).toBe('')
        expect(result.code).toBe(0)
      }
      const applied = results.flatMap(
        (result) => JSON.parse(result.stdout).applied as string[],
      )
      expect(new Set(applied).size).toBe(applied.length)
      expect(applied).toContain('0001_initial_schema')
    }
  })
})
