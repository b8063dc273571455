import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: ['!main.*'],
    target: 'node20',
    // Keep `node:` specifiers: Deno resolves built-ins only by them.
    removeNodeProtocol: false,
    platform: 'node',
  },
  {
    // The process entry point: ESM only, runnable with `node dist/main.js`.
    entry: { main: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    clean: ['!index.*'],
    target: 'node20',
    // Keep `node:` specifiers: Deno resolves built-ins only by them.
    removeNodeProtocol: false,
    platform: 'node',
    banner: { js: '#!/usr/bin/env node' },
  },
])
