import { defineConfig } from 'tsup'

const external = ['@parley/server', '@parley/core']

// The two builds share dist/ and run concurrently, so each one cleans
// everything except the other's files; a plain `clean: true` on both could
// delete output the other build has just written.
export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    // Keep `node:` specifiers: Deno resolves built-ins only by them.
    removeNodeProtocol: false,
    clean: ['!bin.*'],
    external,
  },
  {
    entry: ['src/bin.ts'],
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    // Keep `node:` specifiers: Deno resolves built-ins only by them.
    removeNodeProtocol: false,
    clean: ['!index.*'],
    banner: { js: '#!/usr/bin/env node' },
    external,
  },
])
