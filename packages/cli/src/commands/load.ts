import { Option, type Command } from 'commander'

import type { ApiClient } from '../api/api-client.js'
import type { MetricsBody } from '../api/types.js'
import { signWebhook } from '../api/webhook-signing.js'
import { CliError } from '../errors.js'
import { formatJson } from '../format/json.js'
import { redactUrl } from '../format/redact-url.js'
import { awaitServer, type ServerProgress } from '../load/await-server.js'
import { ProgressReporter } from '../load/progress.js'
import {
  sendRequests,
  type RequestTally,
  type WireRequest,
} from '../load/send-requests.js'
import {
  formatLoadSummary,
  summarizeLoad,
  type LoadSummary,
} from '../load/summary.js'
import {
  parseTraffic,
  TrafficPlan,
  type LoadRequest,
  type TrafficKind,
} from '../load/traffic.js'
import { errColors, outColors, type CliOutput } from '../output.js'
import { stopSignal, type StopSignal } from '../stop-signal.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import { boundedInteger, parsePositiveNumber } from './parsers.js'

interface LoadOptions extends ConnectionOptions {
  count: number
  traffic: TrafficKind[]
  concurrency: number
  rate?: number
  wait: boolean
  waitTimeout: number
}

const HELP_AFTER =
  '\nKinds: sms, mms, email (sends), inbound-sms, inbound-mms, inbound-email\n' +
  '(webhooks), and the shorthands sends, webhooks and mix; requests take the\n' +
  'kinds in turn. Each request comes from a fictional sender of its own\n' +
  '(555 numbers, example.com), so the per-sender limit never bites, but all\n' +
  'come from one client address: start the server with limits that fit the\n' +
  'load, such as API_RATE_LIMIT_PER_IP_PER_MIN=1000000 (and\n' +
  'API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN for webhooks). Run it against mock\n' +
  'providers, never real ones. Then it polls the API until every send left\n' +
  '`queued` and every webhook is threaded, and prints a summary. Exits 1\n' +
  'when a request was rejected or not all were handled in time.\n' +
  example(
    '$ API_RATE_LIMIT_PER_IP_PER_MIN=1000000 parley serve &\n' +
      '$ parley load --count 2000 --concurrency 32\n' +
      '$ parley load --count 600 --rate 100 --traffic mix --json',
  )

/** Registers `parley load` on the program. */
export function registerLoadCommand(program: Command, output: CliOutput): void {
  const command = program
    .command('load')
    .description('load-test: many sends or webhooks, then a summary')
    .addOption(
      new Option('--count <n>', 'how many requests to send (up to 10,000,000)')
        .default(100)
        .argParser(boundedInteger(1, 10_000_000)),
    )
    .addOption(
      new Option('--traffic <kinds>', 'comma-separated kinds to send (below)')
        .default(['sms'], 'sms')
        .argParser(parseTraffic),
    )
    .addOption(
      new Option('--concurrency <c>', 'most requests in flight at once')
        .default(16)
        .argParser(boundedInteger(1, 10_000)),
    )
    .addOption(
      new Option(
        '--rate <per-sec>',
        'requests to start per second (default: as fast as possible)',
      ).argParser(parsePositiveNumber),
    )
    .option('--no-wait', 'do not wait for the server to dispatch and thread')
    .addOption(
      new Option('--wait-timeout <secs>', 'longest wait for the server')
        .default(60)
        .argParser(boundedInteger(1, 86_400)),
    )
  addConnectionOptions(command)
    .addHelpText('after', HELP_AFTER)
    .action((options: LoadOptions) => load(options, output))
}

/** What the phases of one run share. */
interface LoadRun {
  readonly options: LoadOptions
  readonly client: ApiClient
  readonly stop: StopSignal
  readonly reporter: ProgressReporter
  /** A monotonic clock in milliseconds. */
  readonly now: () => number
}

async function load(options: LoadOptions, output: CliOutput): Promise<void> {
  const client = createClient(options)
  // A dead server fails here, once, with the usual advice.
  await client.get('healthz')
  const metricsBefore = await readMetrics(client)
  const run = startRun(options, client, output)
  try {
    const since = new Date().toISOString()
    const tally = await runRequests(run, new TrafficPlan(options.traffic))
    // After Ctrl-C the user wants the summary now, not a wait.
    const progress =
      options.wait && !run.stop.stopped
        ? await runAwait(run, tally, since)
        : undefined
    const summary = summarizeLoad({
      url: redactUrl(options.url),
      traffic: options.traffic,
      count: options.count,
      concurrency: options.concurrency,
      ratePerSec: options.rate,
      interrupted: run.stop.stopped,
      tally,
      progress,
      metricsBefore,
      metricsAfter: await metricsAfterRun(run, metricsBefore, progress),
    })
    output.out(
      options.json
        ? formatJson(summary)
        : formatLoadSummary(summary, outColors(output)),
    )
    failUnlessClean(summary, progress)
  } finally {
    run.stop.dispose()
  }
}

function startRun(
  options: LoadOptions,
  client: ApiClient,
  output: CliOutput,
): LoadRun {
  const now = () => performance.now()
  const reporter = new ProgressReporter({
    write: output.err,
    terminal: output.errIsTerminal === true,
    colors: errColors(output),
    now,
    columns: () => output.errColumns,
  })
  return { options, client, stop: stopSignal(), reporter, now }
}

async function runRequests(
  run: LoadRun,
  plan: TrafficPlan,
): Promise<RequestTally> {
  const { options, reporter } = run
  reporter.begin()
  const tally = await sendRequests({
    count: options.count,
    concurrency: options.concurrency,
    ratePerSec: options.rate,
    request: (index) => plan.request(index),
    prepare: (request) => prepareRequest(request, options.url),
    client: run.client,
    stop: run.stop,
    now: run.now,
    onFinish: (current) => reporter.requests(current, options.count),
  })
  reporter.finishRequests(tally, options.count)
  return tally
}

async function runAwait(
  run: LoadRun,
  tally: RequestTally,
  since: string,
): Promise<ServerProgress> {
  const { options, reporter } = run
  reporter.begin()
  const progress = await awaitServer({
    client: run.client,
    expectations: tally.expectations,
    timeoutMs: options.waitTimeout * 1000,
    concurrency: options.concurrency,
    intervalMs: 100,
    since,
    stop: run.stop,
    now: run.now,
    onRound: (current) => reporter.server(current),
  })
  reporter.finishServer(progress)
  return progress
}

// Webhooks are signed when the server's secrets are in the environment,
// as `parley receive` signs them.
async function prepareRequest(
  request: LoadRequest,
  url: string,
): Promise<WireRequest> {
  if (!request.kind.startsWith('inbound-')) {
    return { path: request.path, body: request.body, headers: {} }
  }
  const signed = await signWebhook(
    { ...request, headers: {} },
    { baseUrl: url, env: process.env },
  )
  return {
    path: signed.path,
    body: signed.body,
    headers: { ...signed.headers },
  }
}

// The counters are a bonus: a server without /metrics still gets loaded.
async function readMetrics(
  client: ApiClient,
): Promise<MetricsBody | undefined> {
  try {
    const { body } = await client.get<MetricsBody>('metrics')
    return typeof body === 'object' && body !== null ? body : undefined
  } catch {
    return undefined
  }
}

// The server's workers count a job once its commit is durable, which can
// be a moment after the queues read empty. So once the wait saw everything
// handled, the counters are read again until they account for it, for up
// to 2 s, and no longer than 0.5 s without moving (another instance did
// the rest, say); they are reported as read without the wait, after
// Ctrl-C, and from a server whose /metrics has no such counters.
const COUNTERS_WAIT_MS = 2000
const COUNTERS_STILL_MS = 500
// Every dispatched send ends as one success or one dead letter, and every
// threaded webhook as one processed event or one dead letter.
const DISPATCHES_SETTLED = ['dispatch_success', 'dispatch_dead_letter']
const THREADS_SETTLED = ['worker_processed', 'worker_dead_letter']
const SETTLING = [...DISPATCHES_SETTLED, ...THREADS_SETTLED]

async function metricsAfterRun(
  run: LoadRun,
  before: MetricsBody | undefined,
  progress: ServerProgress | undefined,
): Promise<MetricsBody | undefined> {
  const started = run.now()
  let movedAt = started
  let counted: number | undefined
  for (;;) {
    const after = await readMetrics(run.client)
    if (
      after === undefined ||
      before === undefined ||
      progress === undefined ||
      !progress.complete ||
      run.stop.stopped ||
      !SETTLING.some((field) => field in after) ||
      countersCaughtUp(before, after, progress)
    ) {
      return after
    }
    const now = total(after, SETTLING)
    if (now !== counted) {
      counted = now
      movedAt = run.now()
    }
    if (
      run.now() - movedAt >= COUNTERS_STILL_MS ||
      run.now() - started >= COUNTERS_WAIT_MS
    ) {
      return after
    }
    await run.stop.sleep(20)
  }
}

function countersCaughtUp(
  before: MetricsBody,
  after: MetricsBody,
  progress: ServerProgress,
): boolean {
  const change = (fields: readonly string[]) =>
    total(after, fields) - total(before, fields)
  return (
    change(DISPATCHES_SETTLED) >= progress.dispatchExpected &&
    change(THREADS_SETTLED) >= progress.threadExpected
  )
}

function total(metrics: MetricsBody, fields: readonly string[]): number {
  return fields.reduce((sum, field) => sum + (metrics[field] ?? 0), 0)
}

/**
 * Exit status 1, after the summary, when the run was not clean: a request
 * was rejected or went unanswered, the server did not handle everything in
 * time, or Ctrl-C cut it short.
 */
function failUnlessClean(
  summary: LoadSummary,
  progress: ServerProgress | undefined,
): void {
  if (progress?.failure !== undefined) throw progress.failure
  const { requests, server } = summary
  const limited = requests.rejected_by_status['429'] ?? 0
  if (limited > 0) {
    throw new CliError(
      'load_rejected',
      `${limited} requests were rate limited (429). All of them come from ` +
        'one client address: restart the server with limits that fit the ' +
        'load, such as API_RATE_LIMIT_PER_IP_PER_MIN=1000000 (default 120) ' +
        'and, for webhooks, API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN (default ' +
        '6000); see docs/cli.md',
    )
  }
  if (requests.rejected > 0 || requests.no_answer > 0) {
    const hint =
      requests.rejected_by_status['401'] === undefined
        ? ''
        : ' (401: pass --api-key for sends; set WEBHOOK_SMS_AUTH_TOKEN and ' +
          'WEBHOOK_EMAIL_SECRET as on the server to sign webhooks)'
    throw new CliError(
      'load_rejected',
      `${requests.rejected + requests.no_answer} of ${requests.sent} ` +
        `requests were not accepted; see the summary${hint}`,
    )
  }
  if (summary.interrupted) {
    throw new CliError(
      'interrupted',
      `interrupted after ${requests.sent} of ${summary.count} requests`,
    )
  }
  if (server !== null && !server.complete) {
    throw new CliError(
      'load_incomplete',
      `the server had not handled every accepted request within ` +
        `--wait-timeout: dispatched ${server.dispatch.done} of ` +
        `${server.dispatch.expected}, threaded ${server.threading.done} of ` +
        `${server.threading.expected}; see \`parley metrics\` and ` +
        '`parley dead-letters`' +
        (server.polls_throttled === 0
          ? ''
          : ` (${server.polls_throttled} of the CLI's own status reads got ` +
            '429: raise API_RATE_LIMIT_PER_IP_PER_MIN or --wait-timeout)'),
    )
  }
}
