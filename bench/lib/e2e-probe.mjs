/**
 * The end-to-end probe, run in a process of its own: sends requests at a
 * steady rate to a Parley server on loopback and watches the server's
 * SQLite file (read-only, beside the server's own connection, as WAL
 * allows) for each message to be committed in its final place:
 *
 * - `webhook`: POST /api/webhooks/sms; done when the message is threaded
 *   into its conversation (its row exists, committed);
 * - `send`: POST /api/messages/sms; done when the message is `sent`
 *   (the mock provider accepted it).
 *
 * Latency is measured from just before the request is written to the
 * first poll (every millisecond) that sees the row. Prints one JSON
 * summary. Its one argument is a JSON job: `url`, `database`, `kind`,
 * `rate` (requests per second), `count`, `firstSender`.
 */
import { Agent, request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { quantile, round } from './results.mjs'
import { sendBody, webhookBody } from './traffic.mjs'

const job = JSON.parse(process.argv[2] ?? '{}')
const target = new URL(job.url)
if (target.hostname !== '127.0.0.1') {
  throw new Error(`the probe targets loopback only, got ${job.url}`)
}
const agent = new Agent({ keepAlive: true, maxSockets: 64 })
const path = job.kind === 'webhook' ? '/api/webhooks/sms' : '/api/messages/sms'

/** Sent-at times by provider id (webhooks) or message id (sends). */
const sentAt = new Map()
const latencies = []
let failures = 0
let answered = 0

function post(n) {
  const providerId = `e2e-${Date.now().toString(36)}-${n}`
  const body =
    job.kind === 'webhook'
      ? webhookBody(job.firstSender + n, providerId)
      : sendBody(job.firstSender + n)
  const started = performance.now()
  if (job.kind === 'webhook') sentAt.set(providerId, started)
  const req = request(
    {
      host: '127.0.0.1',
      port: target.port,
      path,
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json' },
    },
    (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => (text += chunk))
      response.on('end', () => {
        answered += 1
        if (response.statusCode !== 202) failures += 1
        else if (job.kind === 'send') sentAt.set(JSON.parse(text).id, started)
      })
    },
  )
  req.on('error', () => {
    answered += 1
    failures += 1
  })
  req.end(body)
}

// Fires request i at start + i / rate, catching up if a timer fires late.
async function sendSteadily() {
  const interval = 1000 / job.rate
  const start = performance.now()
  for (let i = 0; i < job.count; i += 1) {
    const wait = start + i * interval - performance.now()
    if (wait > 1) await sleep(wait)
    post(i)
  }
}

function watcher() {
  const db = new Database(job.database, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  const query =
    job.kind === 'webhook'
      ? db.prepare(
          `select id, provider_message_id as key from messages
           where id > ? and direction = 'inbound' order by id`,
        )
      : db.prepare(
          `select id, cast(id as text) as key from messages
           where id > ? and direction = 'outbound' and status = 'sent'
           order by id`,
        )
  // Every message row from here on is this probe's: for sends, ids are
  // contiguous, and `after` only moves past an id once it was measured (a
  // row can turn `sent` before its 202 reaches the probe).
  let after = db
    .prepare('select coalesce(max(id), 0) as id from messages')
    .get().id
  const measuredIds = new Set()
  return () => {
    const now = performance.now()
    for (const row of query.all(after)) {
      const sent = sentAt.get(row.key)
      if (sent === undefined) continue
      sentAt.delete(row.key)
      latencies.push(now - sent)
      measuredIds.add(row.id)
    }
    while (measuredIds.delete(after + 1)) after += 1
  }
}

const poll = watcher()
const sending = sendSteadily()
const deadline = performance.now() + (job.count / job.rate) * 1000 + 30_000
let sendingDone = false
sending.then(() => (sendingDone = true))
while (performance.now() < deadline) {
  poll()
  if (
    sendingDone &&
    answered === job.count &&
    latencies.length + failures >= job.count
  )
    break
  await sleep(1)
}
agent.destroy()
process.stdout.write(
  JSON.stringify({
    kind: job.kind,
    rate: job.rate,
    sent: job.count,
    failures,
    measured: latencies.length,
    p50_ms: round(quantile(latencies, 0.5)),
    p99_ms: round(quantile(latencies, 0.99)),
    max_ms: round(Math.max(...latencies)),
  }),
)
