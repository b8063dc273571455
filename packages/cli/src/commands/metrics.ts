import { Option, type Command } from 'commander'

import type { ApiClient } from '../api/api-client.js'
import type { MetricsBody } from '../api/types.js'
import { CliError, UnexpectedResponseError } from '../errors.js'
import { formatJson } from '../format/json.js'
import { redactUrl } from '../format/redact-url.js'
import { formatMetricsReport } from '../format/metrics-report.js'
import { errColors, outColors, type CliOutput } from '../output.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import { boundedInteger } from './parsers.js'
import { stopSignal } from '../stop-signal.js'

interface MetricsOptions extends ConnectionOptions {
  watch?: boolean
  interval: number
}

// Moves the cursor home and clears the screen, so a refresh redraws in
// place rather than scrolling.
// Cursor home, each line cleared to its end, then the rest of the screen:
// the report is redrawn in place without pushing copies into scrollback
// (as clearing the whole screen does in many terminals).
const home = '\u001b[H'
const clearLine = '\u001b[K'
const clearBelow = '\u001b[J'

function inPlace(report: string): string {
  return home + report.replace(/\n/g, `${clearLine}\n`) + clearBelow
}

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
      new Option(
        '--interval <secs>',
        'seconds between refreshes with --watch, 1 to 3600',
      )
        .default(1)
        .argParser(boundedInteger(1, 3600)),
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
  const url = redactUrl(options.url)
  let previous: MetricsBody | undefined
  try {
    while (!stop.stopped) {
      const current = await readOrReport(client, options, output, previous)
      if (current !== undefined) {
        const colors = outColors(output)
        const report = formatMetricsReport({ url, current, previous, colors })
        output.out(redraw ? inPlace(report) : `${report}\n`)
        previous = current
      }
      await stop.sleep(options.interval * 1000)
    }
  } finally {
    stop.dispose()
  }
}

// A failed refresh (a server restarting) does not end the watch: the error
// is shown, under the last report on a terminal, until the server answers.
async function readOrReport(
  client: ApiClient,
  options: MetricsOptions,
  output: CliOutput,
  previous: MetricsBody | undefined,
): Promise<MetricsBody | undefined> {
  try {
    return await readMetrics(client, options.url)
  } catch (error) {
    if (!(error instanceof CliError)) throw error
    const line =
      `${errColors(output).red('error:')} ${error.message} ` +
      `(trying again every ${options.interval} s)\n`
    if (output.outIsTerminal !== true) {
      output.err(line)
      return undefined
    }
    const report =
      previous === undefined
        ? ''
        : formatMetricsReport({
            url: redactUrl(options.url),
            current: previous,
            colors: outColors(output),
          }) + '\n'
    output.out(inPlace(report + line))
    return undefined
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
