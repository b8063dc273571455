/**
 * Importing `@parley/core` loads no database driver: better-sqlite3 and pg
 * come only with the subpath that needs them. Runs the built dist, where
 * both drivers are installed and would load if anything imported them.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from './helpers/server-process.js'

const run = promisify(execFile)
const SCRIPT = join(REPO_ROOT, 'test/packaging/load-without-drivers.mjs')

async function load(how: 'esm' | 'cjs', specifier: string) {
  const { stdout } = await run(process.execPath, [SCRIPT, how, specifier], {
    cwd: REPO_ROOT,
    timeout: 20_000,
  })
  return JSON.parse(stdout) as {
    loaded: boolean
    drivers?: string[]
    refused?: string
  }
}

describe('loading core', () => {
  it.each(['@parley/core', '@parley/core/node-sqlite'])(
    'imports %s (ESM) without resolving better-sqlite3 or pg',
    async (specifier) => {
      expect(await load('esm', specifier)).toEqual({
        loaded: true,
        drivers: [],
      })
    },
  )

  it.each(['@parley/core', '@parley/core/node-sqlite'])(
    'requires %s (CJS) without loading better-sqlite3 or pg',
    async (specifier) => {
      expect(await load('cjs', specifier)).toEqual({
        loaded: true,
        drivers: [],
      })
    },
  )

  it.each([
    ['@parley/core/sqlite', 'better-sqlite3'],
    ['@parley/core/postgres', 'pg'],
  ])(
    'imports %s with its driver, %s, which the check sees',
    async (specifier, driver) => {
      const esm = await load('esm', specifier)
      const cjs = await load('cjs', specifier)

      expect(esm.loaded).toBe(false)
      expect(esm.refused).toMatch(new RegExp(`^driver ${driver} resolved from`))
      expect(cjs).toEqual({ loaded: true, drivers: [driver] })
    },
  )
})
