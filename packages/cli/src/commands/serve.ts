import type { Command } from 'commander'

import { CliError } from '../errors.js'
import { example } from './help-text.js'
import { parsePort } from './parsers.js'

interface ServeOptions {
  port?: number
  host?: string
}

/** Registers `parley serve` on the program. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run a Parley server in this process')
    .option(
      '--port <port>',
      'port to listen on; sets PORT (default: 8080)',
      parsePort,
    )
    .option(
      '--host <host>',
      'address to listen on; sets HOST (default: 0.0.0.0)',
    )
    .addHelpText(
      'after',
      '\nThe server reads its settings from environment variables, listed in\n' +
        'docs/operations.md (PORT, HOST, DATABASE_URL, API_KEYS...).\n' +
        example('$ DATABASE_URL=./data/parley.db parley serve --port 8080'),
    )
    .action((options: ServeOptions) => serve(options))
}

// The server (and its database drivers) load only when this command runs,
// so that the other commands start fast.
async function serve(options: ServeOptions): Promise<void> {
  const { runServer } = await loadServer()
  await runServer(serverEnvironment(options))
}

async function loadServer(): Promise<typeof import('@parley/server')> {
  try {
    return await import('@parley/server')
  } catch (error) {
    if (!isServerMissing(error)) throw error
    throw new CliError(
      '@parley/server is not installed (or not built): install it next to ' +
        '@parley/cli, or run `npm run build` in a checkout',
      { cause: error },
    )
  }
}

// Only the server package itself, by name or by its files (a workspace
// checkout that was not built). A package missing inside the server names
// the server only after "imported from" and is shown as is.
const serverNotFound =
  /^Cannot find (?:package|module) '[^']*@parley[\\/]server\b/

function isServerMissing(error: unknown): boolean {
  const { code, message } = (error ?? {}) as {
    code?: unknown
    message?: unknown
  }
  const notFound =
    code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
  return notFound && serverNotFound.test(String(message))
}

function serverEnvironment(options: ServeOptions): NodeJS.ProcessEnv {
  const env = { ...process.env }
  if (options.port !== undefined) env.PORT = String(options.port)
  if (options.host !== undefined) env.HOST = options.host
  return env
}
