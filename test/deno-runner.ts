/**
 * Runs the `deno` binary that the `deno` npm package (a dev dependency)
 * installs, offline: `--cached-only` forbids fetching any module, the
 * update check is off, and packages resolve from node_modules as
 * deno.json says (`nodeModulesDir: manual`), so `@parley/core` is the
 * workspace's built dist.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { REPO_ROOT } from './helpers/server-process.js'

/** The deno executable's path. */
export const DENO = join(REPO_ROOT, 'node_modules/.bin/deno')

/** What a deno run printed and how it ended. */
export interface DenoRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Where and how to run deno. */
export interface DenoOptions {
  /** Added to the environment. */
  readonly env?: Readonly<Record<string, string>>
  /** @default the repository root */
  readonly cwd?: string
}

/**
 * Runs `deno <subcommand> <flags> <args>` with the offline flags. `run` and
 * `test` skip type checking: in this repository `@parley/core` is a
 * workspace link, which Deno reads as local files, and tsup's shared
 * declaration chunks have no JavaScript file of their name for Deno to
 * pair them with (an installed copy checks clean: see packaging.test.ts).
 * Resolves even when deno fails, so that a test can show its output.
 */
export function runDeno(
  subcommand: 'run' | 'test' | 'check',
  args: readonly string[],
  { env = {}, cwd = REPO_ROOT }: DenoOptions = {},
): Promise<DenoRun> {
  const flags = ['--cached-only', '--no-lock']
  if (subcommand !== 'check') flags.push('--no-check')
  return new Promise((resolve) => {
    execFile(
      DENO,
      [subcommand, ...flags, ...args],
      {
        cwd,
        timeout: 30_000,
        env: {
          ...process.env,
          ...env,
          NO_COLOR: '1',
          DENO_NO_UPDATE_CHECK: '1',
        },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : Number(error.code ?? 1)
        resolve({ code, stdout, stderr })
      },
    )
  })
}
