import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    alias: {
      '@parley/core/sqlite': src('./packages/core/src/sqlite.ts'),
      '@parley/core/postgres': src('./packages/core/src/postgres.ts'),
      '@parley/core': src('./packages/core/src/index.ts'),
      '@parley/server': src('./packages/server/src/index.ts'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
