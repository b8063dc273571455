import { type Command } from 'commander'

import { CliError } from '../errors.js'
import type { CliOutput } from '../output.js'
import { example } from './help-text.js'
import { boundedInteger, parseNonEmpty, parsePort } from './parsers.js'
import { loadServer, type ServerModule } from './server-module.js'
import { formatJson } from '../format/json.js'

/** The options of `parley mock-provider`, as commander parses them. */
interface MockProviderOptions {
  port: number
  host: string
  seed?: number
  timeoutPct?: number
  errorPct?: number
  ratelimitPct?: number
  retryAfterSecs?: number
  hangMs?: number
  slowMs?: number
  accountSid?: string
  authToken?: string
  apiKey?: string
  json?: boolean
}

type MockServer = Awaited<ReturnType<ServerModule['startMockProviderServer']>>

/** Registers `parley mock-provider` on the program. */
export function registerMockProviderCommand(
  program: Command,
  output: CliOutput,
): void {
  program
    .command('mock-provider')
    .description('run a mock Twilio/SendGrid API with seeded faults')
    .requiredOption(
      '--port <port>',
      'port to listen on (0 picks a free one)',
      parsePort,
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--seed <n>',
      'seed of the fault schedule, 0 to 4294967295 (default: random)',
      boundedInteger(0, 0xffff_ffff),
    )
    .option(
      '--timeout-pct <pct>',
      'percent of calls held without an answer (default: 0)',
      boundedInteger(0, 100),
    )
    .option(
      '--error-pct <pct>',
      'percent of calls answered 500 or 503 (default: 0)',
      boundedInteger(0, 100),
    )
    .option(
      '--ratelimit-pct <pct>',
      'percent of calls answered 429 (default: 0)',
      boundedInteger(0, 100),
    )
    .option(
      '--retry-after-secs <secs>',
      'Retry-After sent with a 429, 0 to 3600 (default: 1)',
      boundedInteger(0, 3600),
    )
    .option(
      '--hang-ms <ms>',
      'drop a held call after this long (default: hold it until the ' +
        'client gives up)',
      boundedInteger(0, 3_600_000),
    )
    .option(
      '--slow-ms <ms>',
      'delay every answer by this long (default: 0)',
      boundedInteger(0, 600_000),
    )
    .option(
      '--account-sid <sid>',
      'Twilio account SID accepted (default: ACmock)',
      parseNonEmpty,
    )
    .option(
      '--auth-token <token>',
      'Twilio auth token accepted (default: mock-auth-token)',
      parseNonEmpty,
    )
    .option(
      '--api-key <key>',
      'SendGrid API key accepted (default: mock-api-key)',
      parseNonEmpty,
    )
    .option(
      '--json',
      'print one JSON document once listening (URL, credentials); logs go to stderr',
    )
    .addHelpText('after', HELP_AFTER)
    .action(function (this: Command, options: MockProviderOptions) {
      return runMockProvider(this, options, output)
    })
}

const HELP_AFTER =
  '\nIt speaks POST /2010-04-01/Accounts/{sid}/Messages.json (Twilio) and\n' +
  "POST /v3/mail/send (SendGrid). A call's fault is a pure function of the\n" +
  'seed and its X-Parley-Message-Id and X-Parley-Attempt headers, as for\n' +
  "Parley's in-process mock. GET/PUT /__mock/config reads and changes the\n" +
  'settings; GET/DELETE /__mock/requests lists and clears the calls seen.\n' +
  'It runs until SIGINT or SIGTERM.\n' +
  example(
    '$ parley mock-provider --port 4010 --seed 7 --error-pct 30 \\\n' +
      '    --ratelimit-pct 10 --timeout-pct 10 --hang-ms 15000 &\n' +
      '$ API_SMS_PROVIDERS=twilio TWILIO_BASE_URL=http://127.0.0.1:4010 \\\n' +
      '    TWILIO_ACCOUNT_SID=ACmock TWILIO_AUTH_TOKEN=mock-auth-token \\\n' +
      '    parley serve',
  )

async function runMockProvider(
  command: Command,
  options: MockProviderOptions,
  output: CliOutput,
): Promise<void> {
  const sum =
    (options.timeoutPct ?? 0) +
    (options.errorPct ?? 0) +
    (options.ratelimitPct ?? 0)
  if (sum > 100) {
    command.error(
      `error: --timeout-pct, --error-pct and --ratelimit-pct add up to ${sum}; ` +
        'at most 100 is allowed',
      { exitCode: 2 },
    )
  }
  const { createJsonLogger, startMockProviderServer } = await loadServer()
  const logger = createJsonLogger('info', (line) => output.err(line))
  const server = await startMockProviderServer({
    ...serverOptions(options),
    logger,
  }).catch((error: unknown) => {
    throw startFailure(error, options)
  })
  output.out(
    options.json
      ? formatJson({ url: server.url, credentials: server.credentials })
      : banner(server),
  )
  await untilSignal()
  await server.close()
}

function serverOptions(options: MockProviderOptions) {
  const { ratelimitPct, json: _json, ...rest } = options
  const given = { ...rest, rateLimitPct: ratelimitPct }
  return Object.fromEntries(
    Object.entries(given).filter(([, value]) => value !== undefined),
  )
}

function banner(server: MockServer): string {
  const { url, credentials } = server
  return (
    `mock provider listening on ${url}\n` +
    `  Twilio:   TWILIO_BASE_URL=${url} ` +
    `TWILIO_ACCOUNT_SID=${credentials.accountSid} ` +
    `TWILIO_AUTH_TOKEN=${credentials.authToken}\n` +
    `  SendGrid: SENDGRID_BASE_URL=${url} ` +
    `SENDGRID_API_KEY=${credentials.apiKey}\n` +
    `  settings: ${url}/__mock/config   calls: ${url}/__mock/requests\n`
  )
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve(signal)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

function startFailure(error: unknown, options: MockProviderOptions): Error {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'EADDRINUSE') {
    return new CliError(
      'listen_failed',
      `port ${options.port} on ${options.host} is in use`,
    )
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new CliError('listen_failed', `cannot listen on ${options.host}`)
  }
  if (error instanceof RangeError || error instanceof TypeError) {
    return new CliError('bad_configuration', error.message, { cause: error })
  }
  return error instanceof Error ? error : new Error(String(error))
}

/** A parser of whole numbers from `min` to `max`. */
