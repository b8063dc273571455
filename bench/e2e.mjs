/**
 * End to end, on one Parley server with its default settings (SQLite,
 * synchronous=FULL, mock providers): webhook-to-conversation latency at a
 * steady 200 webhooks per second, and send-to-`sent` latency at a steady
 * 200 sends per second. The probe runs in its own process.
 *
 * Usage: node bench/e2e.mjs [--tiny] [--out dir] [--rate n] [--seconds n]
 */
import { join } from 'node:path'
import { intOption, parseOptions } from './lib/options.mjs'
import { scratchDir, startParley } from './lib/parley-server.mjs'
import { runJsonProcess } from './lib/processes.mjs'
import { saveResult } from './lib/results.mjs'

const options = parseOptions()
const rate = intOption(options, 'rate', 200)
const seconds = intOption(options, 'seconds', options.tiny ? 1 : 15)
const dir = scratchDir('e2e')

const server = await startParley({ dir, name: 'e2e', env: {} })
let webhooks
let sends
try {
  const probe = (kind, firstSender) =>
    runJsonProcess('bench/lib/e2e-probe.mjs', {
      url: server.url,
      database: join(dir, 'e2e.db'),
      kind,
      rate,
      count: rate * seconds,
      firstSender,
    })
  webhooks = await probe('webhook', 0)
  sends = await probe('send', 1_000_000)
} finally {
  await server.stop()
}

const row = (what, result) => ({
  path: what,
  'rate /s': result.rate,
  requests: result.sent,
  failed: result.failures,
  measured: result.measured,
  'p50 ms': result.p50_ms,
  'p99 ms': result.p99_ms,
  'max ms': result.max_ms,
})
saveResult(options.out, 'e2e', {
  settings: { rate, seconds },
  rows: [
    row('webhook -> threaded in its conversation', webhooks),
    row('send -> sent (mock provider)', sends),
  ],
})
