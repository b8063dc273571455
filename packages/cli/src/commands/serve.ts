import type { Command } from 'commander'

import { CliError } from '../errors.js'
import { formatJson } from '../format/json.js'
import type { CliOutput } from '../output.js'
import { stopSignal } from '../stop-signal.js'
import { example } from './help-text.js'
import { parsePort } from './parsers.js'
import { loadServer, type ServerModule } from './server-module.js'

interface ServeOptions {
  port?: number
  host?: string
  json?: boolean
}

/** Registers `parley serve` on the program. */
export function registerServeCommand(
  program: Command,
  output: CliOutput,
): void {
  program
    .command('serve')
    .description('run a Parley server in this process')
    .option(
      '--port <port>',
      'port to listen on, 0 for a free one; sets PORT (default: 8080)',
      parsePort,
    )
    .option(
      '--host <host>',
      'address to listen on; sets HOST (default: 0.0.0.0)',
    )
    .option(
      '--json',
      'print one JSON document once listening (its URL); logs go to stderr',
    )
    .addHelpText(
      'after',
      '\nThe server reads its settings from environment variables, listed in\n' +
        'docs/operations.md (PORT, HOST, DATABASE_URL, API_KEYS...). It logs\n' +
        'JSON lines to stdout (stderr with --json), migrates the database at\n' +
        'start, and stops gracefully on Ctrl-C or SIGTERM.\n' +
        example('$ DATABASE_URL=./data/parley.db parley serve --port 8080'),
    )
    .action((options: ServeOptions) => serve(options, output))
}

type RunningServer = Awaited<ReturnType<ServerModule['startServer']>>

// The server (and its database drivers) load only when this command runs,
// so that the other commands start fast.
async function serve(options: ServeOptions, output: CliOutput): Promise<void> {
  const server = await loadServer()
  const config = readConfig(server, options)
  // Without --json the logs take the server's own sink: lines of one
  // event-loop turn in one write to standard output, as `npm start` does.
  const logger = options.json
    ? server.createJsonLogger(config.logLevel, (line) => output.err(line))
    : server.createJsonLogger(config.logLevel)
  const stop = stopSignal()
  let running: RunningServer
  try {
    running = await server.startServer({ config, logger })
  } catch (error) {
    stop.dispose()
    throw startFailure(error, server)
  }
  if (options.json) output.out(formatJson(listening(running, config)))

  await untilStopped(stop)
  logger.info('server.signal', { signal: stop.signal })
  await shutDown(running)
}

function readConfig(server: ServerModule, options: ServeOptions) {
  try {
    return server.loadConfig(serverEnvironment(options))
  } catch (error) {
    if (!(error instanceof server.ConfigError)) throw error
    throw new CliError(
      'bad_configuration',
      `configuration error: ${error.message} (see docs/operations.md)`,
    )
  }
}

function serverEnvironment(options: ServeOptions): NodeJS.ProcessEnv {
  const env = { ...process.env }
  if (options.port !== undefined) env.PORT = String(options.port)
  if (options.host !== undefined) env.HOST = options.host
  return env
}

function startFailure(error: unknown, server: ServerModule): Error {
  if (error instanceof server.ConfigError) {
    return new CliError(
      'bad_configuration',
      `configuration error: ${error.message}`,
    )
  }
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'EADDRINUSE') {
    return new CliError(
      'listen_failed',
      'the port is in use: stop what listens there, or pick another with --port',
    )
  }
  return error instanceof Error ? error : new Error(String(error))
}

function listening(
  running: RunningServer,
  config: ReturnType<ServerModule['loadConfig']>,
) {
  return {
    status: 'listening',
    url: running.url,
    port: running.port,
    database: config.storage.kind,
  }
}

async function untilStopped(
  stop: ReturnType<typeof stopSignal>,
): Promise<void> {
  while (!stop.stopped) await stop.sleep(60_000)
  stop.dispose()
}

// Graceful shutdown (DESIGN section 8); a grace period that ran out with
// work still held is a failure, exit status 1.
async function shutDown(running: RunningServer): Promise<void> {
  const code = await running.shutdown()
  if (code !== 0) {
    throw new CliError(
      'shutdown_incomplete',
      'the shutdown grace period ran out with work still held; it will ' +
        'be claimed again after its lease expires',
    )
  }
}
