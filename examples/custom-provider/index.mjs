// A provider of your own, written against @parley/core's Provider
// interface: it delivers email by POSTing JSON to a mail relay's HTTP API.
// Parley does the rest (queueing, retries with backoff, the breaker, dead
// letters). The relay here is a stand-in on 127.0.0.1 that fails each
// message's first attempt with a 503, so the run shows a retry.
//
//   node examples/custom-provider/index.mjs
//   DATABASE_URL='postgres://…?schema=…' node examples/custom-provider/index.mjs
import { createServer } from 'node:http'
import { createParley } from '@parley/core'

// #region provider
/**
 * Delivers email through a relay that answers `{ "id": "…" }` on success.
 * Every outcome maps to one of Parley's four kinds; a call that throws
 * counts as transient, so only answers need mapping.
 *
 * @param {{ name?: string, url: string }} options
 * @returns {import('@parley/core').Provider}
 */
export function createRelayProvider({ name = 'relay', url }) {
  return {
    name,
    family: 'email',
    async send(message, { attempt, signal }) {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          // Lets the relay drop a repeat of an attempt it already took.
          'Idempotency-Key': `${message.id}-${attempt}`,
        },
        body: JSON.stringify({
          from: message.from,
          to: message.to,
          subject: message.subject,
          html: message.body,
        }),
        signal, // aborted when Parley's provider timeout runs out
      })
      if (response.ok) {
        const { id } = await response.json()
        return { kind: 'sent', providerMessageId: id }
      }
      const error = `relay answered ${response.status}`
      if (response.status === 429) {
        const seconds = Number(response.headers.get('retry-after'))
        return Number.isFinite(seconds)
          ? { kind: 'rate_limited', error, retryAfterMs: seconds * 1000 }
          : { kind: 'rate_limited', error }
      }
      if (response.status >= 500) return { kind: 'transient', error }
      return { kind: 'permanent', error }
    },
  }
}
// #endregion provider

// The stand-in relay: 503 on a message's first attempt, then accepted.
function startRelay() {
  const seen = new Set()
  let accepted = 0
  const server = createServer((request, response) => {
    const message = request.headers['idempotency-key'].replace(/-\d+$/, '')
    request.resume().on('end', () => {
      if (!seen.has(message)) {
        seen.add(message)
        response.writeHead(503).end()
        return
      }
      accepted += 1
      response.writeHead(200, { 'Content-Type': 'application/json' })
      response.end(JSON.stringify({ id: `relay-${accepted}` }))
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

// #region storage
// Pick the storage at start; each driver loads only when it is chosen.
async function openStorage() {
  const url = process.env.DATABASE_URL
  if (url?.startsWith('postgres')) {
    const { openPostgres } = await import('@parley/core/postgres')
    // postgres://user@host/db?schema=name: Parley's tables in that schema.
    return openPostgres({ connectionString: url })
  }
  const { openSqlite } = await import('@parley/core/sqlite')
  return openSqlite({ filename: url ?? ':memory:' })
}
// #endregion storage

const relay = await startRelay()
const db = await openStorage()

// #region register
const parley = await createParley({
  db,
  providers: [
    createRelayProvider({
      url: `http://127.0.0.1:${relay.address().port}/v1/send`,
    }),
  ],
  // Quick retries for the demo; the defaults start at one second.
  config: { backoffBaseMs: 20, pollIntervalMs: 10 },
})
await parley.start()
// #endregion register

const { id } = await parley.send(
  {
    from: 'Shop <shop@example.com>',
    to: 'ann@example.com',
    subject: 'Your order shipped',
    body: '<p>It is on its way.</p>',
    attachments: [],
    timestamp: new Date().toISOString(),
  },
  { channel: 'email' },
)

// Delivery runs in Parley's dispatch worker; wait (bounded) for it.
let message = await parley.messages.get(id)
for (let tries = 0; tries < 200 && message.status !== 'sent'; tries += 1) {
  await new Promise((resolve) => setTimeout(resolve, 25))
  message = await parley.messages.get(id)
}
console.log(
  `message ${id}: ${message.status} after ${message.attempts} attempts` +
    ` through ${message.provider} as ${message.providerMessageId}`,
)

await parley.stop()
await db.close()
relay.close()
