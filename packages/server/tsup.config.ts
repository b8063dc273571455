import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: ['!main.*'],
    target: 'node20',
    platform: 'node',
  },
  {
    // The process entry point: ESM only, runnable with `node dist/main.js`.
    entry: { main: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    clean: ['!index.*'],
    target: 'node20',
    platform: 'node',
    banner: { js: '#!/usr/bin/env node' },
  },
])
