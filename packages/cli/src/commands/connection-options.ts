import { Option, type Command } from 'commander'

import { ApiClient } from '../api/api-client.js'
import { version } from '../version.js'
import { parseServerUrl } from './parsers.js'

/** The options every command that talks to a server shares. */
export interface ConnectionOptions {
  /** The server's base URL. */
  url: string
  /** The bearer key, if any. */
  apiKey?: string
  /** Print the server's JSON document instead of text. */
  json?: boolean
}

/** The server URL used when neither --url nor PARLEY_URL is given. */
export const defaultServerUrl = 'http://localhost:8080'

/** Adds --url, --api-key and --json to a command that calls a server. */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--url <url>', 'base URL of the Parley server')
        .env('PARLEY_URL')
        .default(defaultServerUrl)
        .argParser(parseServerUrl),
    )
    .addOption(
      new Option('--api-key <key>', 'API key, sent as a bearer token').env(
        'PARLEY_API_KEY',
      ),
    )
    .option('--json', 'print one JSON document instead of text')
    .hook('preAction', refuseBadApiKey)
}

// A key with control characters cannot go in a header. Checked here
// rather than by an option parser, whose error would quote the key.
function refuseBadApiKey(command: Command): void {
  const key = (command.opts() as ConnectionOptions).apiKey
  // eslint-disable-next-line no-control-regex
  if (key === undefined || !/[\u0000-\u001f\u007f]/.test(key)) return
  command.error(
    'error: --api-key (or PARLEY_API_KEY) holds a control character; ' +
      'the key is not shown',
    { exitCode: 2, code: 'parley.badApiKey' },
  )
}

/** A client for the server the connection options point at. */
export function createClient(options: ConnectionOptions): ApiClient {
  return new ApiClient({
    url: options.url,
    apiKey: options.apiKey,
    userAgent: `parley-cli/${version}`,
  })
}
