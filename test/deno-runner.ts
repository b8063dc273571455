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

/**
 * Runs `deno <subcommand> <flags> <args>` from the repository root with
 * the offline flags and `env` added to the environment. Resolves even
 * when deno fails, so that a test can show its output.
 */
export function runDeno(
  subcommand: 'run' | 'test',
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<DenoRun> {
  const flags = ['--cached-only', '--no-lock', '--no-check']
  return new Promise((resolve) => {
    execFile(
      DENO,
      [subcommand, ...flags, ...args],
      {
        cwd: REPO_ROOT,
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
