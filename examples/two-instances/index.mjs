// Two Parley servers on one Postgres database, with a load generator
// spread over both: they share the queues (claims skip each other's rows)
// and wake each other with LISTEN/NOTIFY. The script creates a schema of
// its own, starts both servers from the built package, sends a bounded
// load to 127.0.0.1 only, waits until every message is sent and every
// webhook threaded, prints what each instance did, then stops both and
// drops the schema. The providers are mocks: nothing leaves the machine.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'

const SERVER_MAIN = fileURLToPath(
  new URL('../../packages/server/dist/main.js', import.meta.url),
)

const { values: args } = parseArgs({
  options: {
    'database-url': {
      type: 'string',
      default:
        process.env.DATABASE_URL ??
        'postgres://postgres@127.0.0.1:5432/postgres',
    },
    sends: { type: 'string', default: '500' },
    webhooks: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '16' },
    keep: { type: 'boolean', default: false },
  },
})
const SENDS = bounded('sends', args.sends, 0, 100_000)
const WEBHOOKS = bounded('webhooks', args.webhooks, 0, 100_000)
const CONCURRENCY = bounded('concurrency', args.concurrency, 1, 256)

if (!existsSync(SERVER_MAIN)) {
  console.error(
    `${SERVER_MAIN} is missing: run \`npm install\` (or npm run build) first`,
  )
  process.exit(1)
}

const admin = new pg.Client({ connectionString: args['database-url'] })
admin.on('error', () => undefined)
await admin.connect()
const schema = `parley_example_${randomBytes(4).toString('hex')}`
await admin.query(`create schema ${schema}`)
const servers = []
// Ctrl-C: the servers (same process group) stop on their own; drop the
// schema before leaving.
process.once('SIGINT', async () => {
  await Promise.all(servers.map(stopServer))
  if (!args.keep) await admin.query(`drop schema ${schema} cascade`)
  process.exit(130)
})

try {
  const url = new URL(args['database-url'])
  url.searchParams.set('schema', schema)
  for (const name of ['A', 'B']) servers.push(await startServer(name, url))
  console.log(
    `schema ${schema}: ${servers.map((s) => `${s.name} ${s.url}`).join(', ')}`,
  )

  const started = performance.now()
  await generateLoad()
  await drained()
  const ms = Math.round(performance.now() - started)
  console.log(
    `load: ${SENDS} sends and ${WEBHOOKS} webhooks, all settled in ${ms} ms`,
  )
  await printWhatEachDid()
} finally {
  await Promise.all(servers.map(stopServer))
  if (args.keep) console.log(`kept schema ${schema}`)
  else await admin.query(`drop schema ${schema} cascade`)
  await admin.end()
}

/** Starts `node dist/main.js` and resolves once it logs its URL. */
function startServer(name, databaseUrl) {
  const child = spawn(process.execPath, [SERVER_MAIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: databaseUrl.toString(),
      API_DB_POOL_MAX: '5',
      // One client sends everything: raise the per-client limits.
      API_RATE_LIMIT_PER_IP_PER_MIN: '1000000',
      API_RATE_LIMIT_PER_SENDER_PER_MIN: '1000000',
      API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN: '1000000',
    },
  })
  const server = { name, child, url: '', sends: 0, webhooks: 0, log: '' }
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => (server.log += chunk))
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      server.log = (server.log + chunk).slice(-20_000)
      if (server.url) return
      // The log is JSON lines; the URL comes with the listening event.
      const listening = /"event":"server\.listening".*?"url":"([^"]+)"/.exec(
        server.log,
      )
      if (listening) {
        server.url = listening[1]
        resolve(server)
      }
    })
    child.once('exit', (code) => {
      if (!server.url)
        reject(new Error(`server ${name} exited (${code}):\n${server.log}`))
    })
  })
}

async function stopServer(server) {
  if (server.child.exitCode !== null) return
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
}

/** Sends and webhooks, alternating between the instances. */
async function generateLoad() {
  const requests = []
  for (let i = 0; i < Math.max(SENDS, WEBHOOKS); i += 1) {
    if (i < SENDS) requests.push({ kind: 'sends', i })
    if (i < WEBHOOKS) requests.push({ kind: 'webhooks', i })
  }
  let next = 0
  const lane = async () => {
    while (next < requests.length) {
      const request = requests[next]
      next += 1
      // Sends go to A, B, A, …; webhooks to B, A, B, …
      const turn = request.i + (request.kind === 'sends' ? 0 : 1)
      const server = servers[turn % servers.length]
      await post(server, request)
      server[request.kind] += 1
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane))
}

async function post(server, { kind, i }) {
  const phone = (n) => `+1804555${String(n % 10_000).padStart(4, '0')}`
  const message = {
    from: phone(i % 100),
    to: phone(5000 + (i % 37)),
    type: 'sms',
    body: `${kind} ${i}`,
    attachments: null,
    timestamp: new Date().toISOString(),
  }
  const [path, body] =
    kind === 'sends'
      ? ['/api/messages/sms', message]
      : [
          '/api/webhooks/sms',
          {
            ...message,
            from: message.to,
            to: message.from,
            messaging_provider_id: `SM-example-${i}`,
          },
        ]
  const response = await fetch(new URL(path, server.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (response.status !== 202) {
    throw new Error(
      `${path} on ${server.name}: ${response.status} ${await response.text()}`,
    )
  }
}

/** Waits until both queues hold only finished rows. */
async function drained() {
  for (;;) {
    const { rows } = await admin.query(
      `select (select count(*) from ${schema}.dispatch_jobs where state <> 'done')
            + (select count(*) from ${schema}.inbound_events where state <> 'done') as open`,
    )
    if (Number(rows[0].open) === 0) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Each instance's /metrics. A worker counts its work once the commit is on
 * disk, a moment after the rows read as done, so this reads until the
 * counters cover every message (for up to five seconds).
 */
async function settledMetrics() {
  const deadline = Date.now() + 5000
  for (;;) {
    const all = await Promise.all(
      servers.map(async (server) => {
        const response = await fetch(new URL('/metrics', server.url))
        return response.json()
      }),
    )
    const total = (field) => all.reduce((sum, m) => sum + m[field], 0)
    const counted =
      total('dispatch_success') === SENDS &&
      total('worker_processed') === WEBHOOKS
    if (counted || Date.now() > deadline) return all
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function printWhatEachDid() {
  let dispatched = 0
  let threaded = 0
  const all = await settledMetrics()
  for (const [i, server] of servers.entries()) {
    const metrics = all[i]
    dispatched += metrics.dispatch_success
    threaded += metrics.worker_processed
    console.log(
      `instance ${server.name}: accepted ${server.sends} sends and ${server.webhooks} webhooks; ` +
        `sent ${metrics.dispatch_success} messages (${metrics.dispatch_attempts} provider calls), ` +
        `threaded ${metrics.worker_processed} webhooks (${metrics.worker_claimed} claimed)`,
    )
  }
  console.log(
    `total: sent ${dispatched} of ${SENDS}, threaded ${threaded} of ${WEBHOOKS}`,
  )
}

function bounded(name, text, min, max) {
  const value = Number(text)
  if (Number.isInteger(value) && value >= min && value <= max) return value
  console.error(
    `--${name} must be a whole number from ${min} to ${max}, got ${text}`,
  )
  process.exit(1)
}
