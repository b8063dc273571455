/**
 * Accept throughput: requests per second and latency of POST
 * /api/messages/sms on SQLite, beside a bare node:http server answering
 * 202 with the same JSON, all in one run. Also the server's peak RSS
 * during the run and its RSS after 100,000 distinct senders.
 *
 * Usage: node bench/accept.mjs [--tiny] [--out dir] [--duration s]
 *   [--connections n]
 */
import { intOption, parseOptions } from './lib/options.mjs'
import {
  cpuTimeOf,
  memoryOf,
  runLoad,
  startServerProcess,
} from './lib/processes.mjs'
import { round, saveResult } from './lib/results.mjs'
import { scratchDir, startParley } from './lib/parley-server.mjs'

const PATH = '/api/messages/sms'

const options = parseOptions()
const durationSec = intOption(options, 'duration', options.tiny ? 1 : 10)
const connections = intOption(options, 'connections', options.tiny ? 4 : 64)
const warmupSec = options.tiny ? 0 : 2
const memorySenders = options.tiny ? 300 : 100_000
const dir = scratchDir('accept')

// Each server gets a warm-up, then the timed run; senders never repeat.
async function measure({ url, pid }, firstSender, idempotency) {
  const warm =
    warmupSec > 0 ? await warmUp(url, firstSender, idempotency) : undefined
  const cpuBefore = cpuTimeOf(pid)
  const load = await runLoad({
    url,
    path: PATH,
    kind: 'send',
    connections,
    durationSec,
    firstSender: firstSender + 1_000_000,
    idempotency,
  })
  const cpuUs = ((cpuTimeOf(pid) - cpuBefore) * 1000) / load.ok
  // Every sender the server has seen so far, warm-up included.
  return {
    ...load,
    cpu_us: cpuUs,
    senders: load.senders + (warm?.senders ?? 0),
  }
}

function warmUp(url, firstSender, idempotency) {
  return runLoad({
    url,
    path: PATH,
    kind: 'send',
    connections,
    durationSec: warmupSec,
    firstSender,
    idempotency,
  })
}

function row(setup, load, bareRps, memory) {
  return {
    setup,
    'req/s': Math.round(load.rps),
    'of bare': round(load.rps / bareRps),
    'server CPU us/req': Math.round(load.cpu_us),
    'p50 ms': load.latency_p50_ms,
    'p99 ms': load.latency_p99_ms,
    'non-2xx': load.non2xx + load.errors + load.timeouts,
    'peak RSS MiB': memory?.peak,
  }
}

async function bare(workUs = 0) {
  const server = await startServerProcess({
    script: 'bench/bare-server.mjs',
    env: { BENCH_WORK_US: String(workUs) },
  })
  try {
    const load = await measure(server, 0, false)
    return { load, memory: memoryOf(server.pid) }
  } finally {
    await server.stop()
  }
}

// Runs the timed load against a fresh server; with `fillSenders`, then
// sends requests from new senders until `memorySenders` distinct ones were
// seen, and reads the RSS.
async function parley(name, env, idempotency, fillSenders) {
  const server = await startParley({ dir, name, env })
  try {
    const load = await measure(server, 0, idempotency)
    const memory = memoryOf(server.pid)
    if (!fillSenders) return { load, memory }
    const seen = load.senders
    const rest = Math.max(0, memorySenders - seen)
    if (rest > 0) {
      await runLoad({
        url: server.url,
        path: PATH,
        kind: 'send',
        connections,
        amount: rest,
        firstSender: 5_000_000,
      })
    }
    return { load, memory, after: memoryOf(server.pid), senders: seen + rest }
  } finally {
    await server.stop()
  }
}

const bareRun = await bare()
// The bare server spinning WORK_US of CPU per request: what share of the
// bare throughput any server that works that long per request keeps here.
const WORK_US = 50
const bareWork = options.tiny ? undefined : await bare(WORK_US)
const full = await parley('full', {}, false, true)
// Tiny mode (the smoke test) runs the two setups that matter most.
const fullKeys = options.tiny
  ? undefined
  : await parley('full-keys', {}, true, false)
const normal = await parley(
  'normal',
  { API_SQLITE_SYNCHRONOUS: 'NORMAL' },
  false,
  false,
)
const normalKeys = options.tiny
  ? undefined
  : await parley(
      'normal-keys',
      { API_SQLITE_SYNCHRONOUS: 'NORMAL' },
      true,
      false,
    )
const bareRps = bareRun.load.rps

saveResult(options.out, 'accept', {
  settings: { durationSec, connections, warmupSec, path: PATH },
  rows: [
    row('bare node:http', bareRun.load, bareRps, bareRun.memory),
    bareWork &&
      row(
        `bare node:http + ${WORK_US} us of CPU work a request`,
        bareWork.load,
        bareRps,
        bareWork.memory,
      ),
    row('Parley, synchronous=FULL (default)', full.load, bareRps, full.memory),
    fullKeys &&
      row(
        'Parley, FULL, Idempotency-Key on every request',
        fullKeys.load,
        bareRps,
        fullKeys.memory,
      ),
    row('Parley, synchronous=NORMAL', normal.load, bareRps, normal.memory),
    normalKeys &&
      row(
        'Parley, NORMAL, Idempotency-Key on every request',
        normalKeys.load,
        bareRps,
        normalKeys.memory,
      ),
  ].filter(Boolean),
  memory: {
    peak_rss_mib_during_accept: full.memory?.peak,
    distinct_senders: full.senders,
    rss_mib_after_senders: full.after?.rss,
    peak_rss_mib_after_senders: full.after?.peak,
  },
  raw: { bare: bareRun, bareWork, full, fullKeys, normal, normalKeys },
})
process.stdout.write(
  `\nserver RSS after ${full.senders} distinct senders: ${full.after?.rss} MiB (peak ${full.after?.peak} MiB)\n`,
)
