import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'

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
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [binPath, ...args],
      { env: cliEnv(env), timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : (error.code as number | null)
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/**
 * Checks that the run of `args` was refused as bad usage: exit 2, `message`
 * on stderr, and on stdout nothing, or under --json the usage error as a
 * document.
 */
export function expectUsageError(
  result: CliResult,
  args: readonly string[],
  message: string,
): void {
  expect(result.code).toBe(2)
  expect(result.stdout).toEqual(
    args.includes('--json') ? expect.stringContaining('"code": "usage"') : '',
  )
  expect(result.stderr).toContain(message)
}

/**
 * Checks that the run of `args` found no server at `url`: exit 1, the
 * reason and how to start one on stderr, and on stdout nothing, or under
 * --json the same error as a document.
 */
export function expectNoServer(
  result: CliResult,
  args: readonly string[],
  url: string,
): void {
  const stdout = args.includes('--json')
    ? expect.stringContaining('"code": "server_unreachable"')
    : ''
  expect(result).toEqual({
    code: 1,
    stdout,
    stderr:
      `error: no Parley server answers at ${url} (ECONNREFUSED) — ` +
      'start one with `parley serve` or pass --url\n',
  })
}

/** A bin that keeps running (serve, metrics --watch), and what it printed. */
export interface RunningCli {
  readonly child: ChildProcess
  /** Everything written to stdout so far. */
  stdout(): string
  /** Everything written to stderr so far. */
  stderr(): string
  /** Resolves once stdout matches `pattern`; rejects after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Sends `signal` and resolves the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Starts the built bin with `args` and leaves it running. */
export function startCli(
  args: readonly string[],
  env: Record<string, string> = {},
): RunningCli {
  const child = spawn(process.execPath, [binPath, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForOutput: async (pattern, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(
            `no ${pattern} in the output\n--- stdout ---\n${out}\n--- stderr ---\n${err}`,
          )
        }
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      return out
    },
    stop: (signal = 'SIGINT') => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
}

// The caller's PARLEY_* variables are dropped so that only `env` sets them,
// and colour is off so that the output compares as plain text.
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('PARLEY_')),
  )
  return { ...inherited, NO_COLOR: '1', ...env }
}
