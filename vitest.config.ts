import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { configDefaults, defineConfig } from 'vitest/config'
import { postgresForTests } from './test/helpers/postgres.js'

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// The storage suite: every core test file that makes its database with
// support.ts's testDb, testStore or createHarness. It runs twice, as the
// `sqlite` and the `postgres` project (DESIGN section 8: one set of
// migrations and queries serves both); everything else runs once.
const CORE_TESTS = 'packages/core/test'
const STORAGE_TESTS = readdirSync(src(`./${CORE_TESTS}`))
  .filter((name) => name.endsWith('.test.ts'))
  .map((name) => `${CORE_TESTS}/${name}`)
  .filter((path) =>
    /\b(?:testDb|testStore|createHarness)\(/.test(
      readFileSync(src(`./${path}`), 'utf8'),
    ),
  )

// Probed once per run: fails the run under CI=true when Postgres is
// unreachable, and otherwise prints one line and skips the Postgres tests.
const postgres = await postgresForTests()

export default defineConfig({
  resolve: {
    alias: {
      '@parley/core/sqlite': src('./packages/core/src/sqlite.ts'),
      '@parley/core/postgres': src('./packages/core/src/postgres.ts'),
      '@parley/core/node-sqlite': src('./packages/core/src/node-sqlite.ts'),
      '@parley/core': src('./packages/core/src/index.ts'),
      '@parley/server': src('./packages/server/src/index.ts'),
    },
  },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...STORAGE_TESTS],
        },
      },
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: STORAGE_TESTS,
          env: { PARLEY_TEST_DIALECT: 'sqlite' },
        },
      },
      {
        extends: true,
        test: {
          // Each test gets a schema of its own, in a database of its test
          // file's own (test/helpers/postgres.ts).
          name: 'postgres',
          include: STORAGE_TESTS,
          env: { PARLEY_TEST_DIALECT: 'postgres' },
          provide: { postgresUrl: postgres.url },
          setupFiles: ['test/helpers/postgres-setup.ts'],
          // Postgres unreachable outside CI: a pattern no name matches
          // reports every test of the project as skipped, running no hook.
          ...(postgres.skip === null ? {} : { testNamePattern: /(?!)/ }),
        },
      },
    ],
  },
})
