/**
 * Runs the built server (`packages/server/dist/main.js`, what `npm start`
 * runs) as a child process on a free loopback port with its own temporary
 * SQLite file, and cleans up after it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The server's process entry point, as built by `npm run build`. */
export const SERVER_MAIN = join(REPO_ROOT, 'packages/server/dist/main.js')

/**
 * Limits high enough for any test, set explicitly so that bulk tests stay
 * green once rate limiting lands (DESIGN section 6: tests that send more
 * than the defaults allow set the limits they need).
 */
export const BULK_LIMITS: Readonly<Record<string, string>> = {
  API_RATE_LIMIT_PER_IP_PER_MIN: '1000000',
  API_RATE_LIMIT_PER_SENDER_PER_MIN: '1000000',
  API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN: '1000000',
}

// Only these are taken from the test runner's environment: nothing the
// runner happens to set (PORT, DATABASE_URL, API_*) may leak into a server.
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']

/** Options of {@link launchServer} and {@link startServerProcess}. */
export interface ServerProcessOptions {
  /**
   * Variables set on top of the defaults below; `undefined` removes one.
   * Defaults: `PORT=0`, `HOST=127.0.0.1`, `DATABASE_URL` (a fresh file in
   * a temporary folder) and {@link BULK_LIMITS}.
   */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Reuse this database file (a restart) instead of a fresh one. */
  readonly databasePath?: string
  /** Leave out {@link BULK_LIMITS}. @default false */
  readonly withoutBulkLimits?: boolean
  /** Working folder of the process. @default the temporary folder */
  readonly cwd?: string
  /** How long to wait for the listening line, in ms. @default 15000 */
  readonly listenTimeoutMs?: number
}

const running = new Set<ServerProcess>()
const tempDirs = new Set<string>()

/** Creates a temporary folder that {@link cleanUpServers} removes. */
export function makeTempDir(prefix = 'parley-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** A server child process and everything it printed. */
export class ServerProcess {
  /** The base URL, known once the server logged that it listens. */
  url = ''
  port = 0
  /** Exit code, or null while running or when ended by a signal. */
  exitCode: number | null = null
  /** The signal that ended the process, if one did. */
  exitSignal: NodeJS.Signals | null = null

  private out = ''
  private err = ''
  private readonly exited: Promise<number | null>

  constructor(
    readonly child: ChildProcess,
    /** The SQLite file the server uses. */
    readonly databasePath: string,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.out += chunk
    })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.err += chunk
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code
        this.exitSignal = signal
        running.delete(this)
        resolve(code)
      })
    })
  }

  /** Everything written to stdout so far. */
  get stdout(): string {
    return this.out
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.err
  }

  /** True once the process has ended. */
  get hasExited(): boolean {
    return this.exitCode !== null || this.exitSignal !== null
  }

  /** The JSON log lines printed so far, parsed (other lines skipped). */
  logLines(): Record<string, unknown>[] {
    return this.out.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return []
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })
  }

  /** Stdout and stderr, labelled, for assertion messages. */
  describeOutput(): string {
    return `--- stdout ---\n${this.out}\n--- stderr ---\n${this.err}`
  }

  /** Sends a signal; false when the process already ended. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.hasExited) return false
    return this.child.kill(signal)
  }

  /**
   * Resolves the exit code (null when a signal ended the process). Rejects
   * with the captured output when it does not end within `timeoutMs`.
   */
  async waitForExit(timeoutMs = 20_000): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `server did not exit within ${timeoutMs} ms\n${this.describeOutput()}`,
            ),
          ),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([this.exited, expired])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGTERM, then the exit code. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    this.kill('SIGTERM')
    return this.waitForExit(timeoutMs)
  }

  /**
   * Waits for the `server.listening` log line and reads the URL from it.
   * Rejects with the captured output when the process exits first or the
   * line does not come within `timeoutMs`.
   */
  async ready(timeoutMs = 15_000): Promise<this> {
    const started = Date.now()
    while (Date.now() - started < timeoutMs) {
      const listening = this.logLines().find(
        (line) => line.event === 'server.listening',
      )
      if (listening && typeof listening.url === 'string') {
        this.url = listening.url
        this.port = Number(new URL(listening.url).port)
        return this
      }
      if (this.hasExited) {
        throw new Error(
          `server exited (code ${this.exitCode}, signal ${this.exitSignal}) before listening\n${this.describeOutput()}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    this.kill('SIGKILL')
    throw new Error(
      `server did not log server.listening within ${timeoutMs} ms\n${this.describeOutput()}`,
    )
  }
}

/**
 * Spawns the built server without waiting for it to listen (for start-up
 * failures). Most tests want {@link startServerProcess}.
 */
export function launchServer(
  options: ServerProcessOptions = {},
): ServerProcess {
  assertBuilt()
  const dir = makeTempDir()
  const databasePath = options.databasePath ?? join(dir, 'parley.db')
  const env = buildEnv(databasePath, options)
  const child = spawn(process.execPath, [SERVER_MAIN], {
    cwd: options.cwd ?? dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const server = new ServerProcess(child, databasePath)
  running.add(server)
  return server
}

/** Spawns the built server and resolves once it listens. */
export async function startServerProcess(
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  return launchServer(options).ready(options.listenTimeoutMs)
}

/**
 * Kills (SIGKILL) every server still running and removes the temporary
 * folders. Call it in `afterAll` (or `afterEach`) of every file that starts
 * servers, so that a failing test leaves nothing behind.
 */
export async function cleanUpServers(): Promise<void> {
  const alive = [...running]
  for (const server of alive) server.kill('SIGKILL')
  await Promise.all(alive.map((server) => server.waitForExit(10_000)))
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

function buildEnv(
  databasePath: string,
  options: ServerProcessOptions,
): Record<string, string> {
  const env: Record<string, string | undefined> = {}
  for (const name of INHERITED) env[name] = process.env[name]
  Object.assign(
    env,
    { PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databasePath },
    options.withoutBulkLimits ? {} : BULK_LIMITS,
    options.env,
  )
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  )
}

function assertBuilt(): void {
  if (existsSync(SERVER_MAIN)) return
  throw new Error(`${SERVER_MAIN} is missing: run \`npm run build\` first`)
}

// A test worker that dies (or is stopped) must not leave servers behind.
process.once('exit', () => {
  for (const server of running) server.kill('SIGKILL')
})
