import { defineConfig } from 'tsup'

export default defineConfig({
  entry: [
    'src/index.ts',
    'src/sqlite.ts',
    'src/postgres.ts',
    'src/node-sqlite.ts',
  ],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // Keep `node:` specifiers: Deno resolves built-ins only by them.
  removeNodeProtocol: false,
  platform: 'node',
  // Class names survive the CommonJS build (errors print as ValidationError).
  keepNames: true,
  splitting: true,
  // The subpaths import core's types by name (see tsconfig.json).
  external: ['@parley/core'],
})
