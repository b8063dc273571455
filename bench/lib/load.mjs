/**
 * The load generator, run in a process of its own by runLoad(): autocannon
 * against one route on loopback, each request from a distinct sender.
 * Prints one JSON summary on stdout.
 *
 * Its one argument is a JSON job:
 * - `url`: base URL (loopback)
 * - `path`: route, e.g. `/api/messages/sms`
 * - `kind`: `send` or `webhook` (which body to send)
 * - `connections`: concurrent connections
 * - `durationSec` or `amount`: how long, or how many requests
 * - `firstSender`: number of the first sender (later ones count up)
 * - `idempotency`: send a distinct `Idempotency-Key` with each request
 */
import autocannon from 'autocannon'
import { sendBody, webhookBody } from './traffic.mjs'

const job = JSON.parse(process.argv[2] ?? '{}')
const url = new URL(job.url)
if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
  throw new Error(`the load generator targets loopback only, got ${job.url}`)
}

let next = job.firstSender ?? 0
const runId = Date.now().toString(36)
const bodyOf = job.kind === 'webhook' ? webhookBody : sendBody

function setupRequest(request) {
  const n = next
  next += 1
  const headers = { ...request.headers }
  if (job.idempotency) headers['idempotency-key'] = `bench-${runId}-${n}`
  return { ...request, headers, body: bodyOf(n) }
}

const options = {
  url: job.url,
  connections: job.connections ?? 64,
  pipelining: 1,
  requests: [
    {
      method: 'POST',
      path: job.path,
      headers: { 'content-type': 'application/json' },
      setupRequest,
    },
  ],
}
if (job.amount) options.amount = job.amount
else options.duration = job.durationSec ?? 10

const result = await autocannon(options)
const ok = result['2xx']
process.stdout.write(
  JSON.stringify({
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    duration_s: result.duration,
    rps: ok / result.duration,
    latency_p50_ms: result.latency.p50,
    latency_p99_ms: result.latency.p99,
    senders: next - (job.firstSender ?? 0),
  }),
)
