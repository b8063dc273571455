import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The built bin, as npm would install it. */
export const binPath = fileURLToPath(new URL('../dist/bin.js', import.meta.url))

/** What a run of the bin did. */
export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Fails with a clear message when the bin has not been built. */
export function assertBuilt(): void {
  if (existsSync(binPath)) return
  throw new Error(
    `${binPath} is missing: build it first (npm run build -w @parley/cli)`,
  )
}

/**
 * Runs the built bin with `args`, asynchronously, so that a fake server in
 * this process can answer it. The caller's PARLEY_* variables are removed so
 * that only `env` sets them.
 */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('PARLEY_')),
  )
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [binPath, ...args],
      { env: { ...inherited, NO_COLOR: '1', ...env }, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : (error.code as number | null)
        resolve({ code, stdout, stderr })
      },
    )
  })
}
