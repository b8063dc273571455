/**
 * @parley/core under Deno: the Deno tests in test/deno/ run on Deno's
 * built-in node:sqlite and on Postgres through pg, against the built dist
 * (run `npm run build` first; `npm test` does).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { runDeno } from './deno-runner.js'
import { type FreshSchema, freshSchema } from './helpers/postgres.js'
import { postgresSkipReason } from './helpers/postgres-required.js'

const skipPostgres = await postgresSkipReason('the Deno test on Postgres')

describe('Deno', () => {
  it('sends, receives and lists on node:sqlite', async () => {
    const run = await runDeno('test', [
      '--allow-read',
      '--allow-write',
      '--allow-env',
      'test/deno/node-sqlite.deno.ts',
    ])

    expect(run.stderr + run.stdout).toMatch(/^ok \| 3 passed \| 0 failed/m)
    expect(run.code).toBe(0)
  })

  describe.skipIf(skipPostgres !== undefined)('on Postgres', () => {
    let schema: FreshSchema | undefined
    afterAll(() => schema?.drop())

    it('sends, receives and lists through pg', async () => {
      schema = await freshSchema()
      const { hostname, port } = new URL(schema.url)
      const run = await runDeno(
        'test',
        [
          '--allow-env',
          `--allow-net=${hostname}:${port || '5432'}`,
          '--allow-read',
          'test/deno/postgres.deno.ts',
        ],
        {
          env: {
            PARLEY_DENO_POSTGRES_URL: schema.url,
            PARLEY_DENO_POSTGRES_SCHEMA: schema.name,
          },
        },
      )

      expect(run.stderr + run.stdout).toMatch(/^ok \| 1 passed \| 0 failed/m)
      expect(run.code).toBe(0)
    })
  })
})
