import { Option, type Command } from 'commander'

import type { ApiClient } from '../api/api-client.js'
import type { MetricsBody } from '../api/types.js'
import { UnexpectedResponseError } from '../errors.js'
import { formatJson } from '../format/json.js'
import { redactUrl } from '../format/redact-url.js'
import { formatMetricsReport } from '../format/metrics-report.js'
import { outColors, type CliOutput } from '../output.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import { parsePositiveInteger } from './parsers.js'
import { stopSignal } from '../stop-signal.js'

interface MetricsOptions extends ConnectionOptions {
  watch?: boolean
  interval: number
}

// Moves the cursor home and clears the screen, so a refresh redraws in
// place rather than scrolling.
const clearScreen = '\u001b[H\u001b[2J'

/** Registers `parley metrics` on the program. */
export function registerMetricsCommand(
  program: Command,
  output: CliOutput,
): void {
  const command = program
    .command('metrics')
    .description("show the server's counters (--watch to follow)")
    .option(
      '--watch',
      'refresh until Ctrl-C, with each counter’s change per second',
    )
    .addOption(
      new Option('--interval <secs>', 'seconds between refreshes with --watch')
        .default(1)
        .argParser(parsePositiveInteger),
    )
  addConnectionOptions(command)
    .addHelpText(
      'after',
      '\n--json prints the server’s document as it is, once; it cannot be\n' +
        'combined with --watch.\n' +
        example(
          '$ parley metrics\n$ parley metrics --watch --url http://127.0.0.1:8080',
        ),
    )
    .action((options: MetricsOptions, command: Command) => {
      if (options.watch && options.json) {
        command.error(
          'error: --watch redraws for people and cannot be combined with ' +
            '--json; for scripts, run `parley metrics --json` at your own interval',
          { exitCode: 2, code: 'parley.watchWithJson' },
        )
      }
      return options.watch
        ? watchMetrics(options, output)
        : showMetrics(options, output)
    })
}

async function showMetrics(
  options: MetricsOptions,
  output: CliOutput,
): Promise<void> {
  const current = await readMetrics(createClient(options), options.url)
  output.out(
    options.json
      ? formatJson(current)
      : formatMetricsReport({
          url: redactUrl(options.url),
          current,
          colors: outColors(output),
        }),
  )
}

// Refreshes until SIGINT (Ctrl-C) or SIGTERM, then ends normally: stopping
// the watch is what the user asked for, so it exits 0.
async function watchMetrics(
  options: MetricsOptions,
  output: CliOutput,
): Promise<void> {
  const client = createClient(options)
  const stop = stopSignal()
  const redraw = output.outIsTerminal === true
  let previous: MetricsBody | undefined
  try {
    while (!stop.stopped) {
      const current = await readMetrics(client, options.url)
      const report = formatMetricsReport({
        url: redactUrl(options.url),
        current,
        previous,
        colors: outColors(output),
      })
      output.out(redraw ? clearScreen + report : `${report}\n`)
      previous = current
      await stop.sleep(options.interval * 1000)
    }
  } finally {
    stop.dispose()
  }
}

async function readMetrics(
  client: ApiClient,
  url: string,
): Promise<MetricsBody> {
  const { body } = await client.get<unknown>('metrics')
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    return body as MetricsBody
  }
  throw new UnexpectedResponseError(url, 200, 'not a metrics document')
}
