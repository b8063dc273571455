// Embedding @parley/core in an existing node:http application: the app
// keeps its own routes and calls Parley for messaging. Storage is SQLite in
// memory and the providers are mocks, so nothing leaves the machine.
import { createServer } from 'node:http'
// #region create
import { createMockProvider, createParley, isParleyError } from '@parley/core'
import { openSqlite } from '@parley/core/sqlite'

const db = openSqlite({ filename: ':memory:' }) // or a path: './data/app.db'
const parley = await createParley({
  db,
  providers: [
    createMockProvider({ family: 'sms' }),
    createMockProvider({ family: 'email' }),
  ],
})
await parley.start()
// #endregion create

const server = createServer(async (request, response) => {
  try {
    const answer = await route(request)
    reply(response, answer.status, answer.body)
  } catch (error) {
    const status = statusOf(error)
    reply(response, status, {
      error: status === 500 ? 'internal' : error.code,
      message: status === 500 ? 'internal error' : error.message,
      ...(error.details ? { details: error.details } : {}),
    })
  }
})

// #region errors
// Every error Parley throws on purpose is a ParleyError with a stable
// `code`; the app maps the codes it cares about, the rest are its own bugs.
const STATUS_OF_CODE = {
  validation_failed: 400,
  not_found: 404,
  idempotency_in_progress: 409,
  no_route: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  unavailable: 503,
}

function statusOf(error) {
  if (!isParleyError(error)) return 500
  return STATUS_OF_CODE[error.code] ?? 500
}
// #endregion errors

// #region handler
async function route(request) {
  const url = new URL(request.url, 'http://app.local')
  if (request.method === 'POST' && url.pathname === '/notify') {
    const input = parseJson(await readBody(request))
    if (input === undefined) {
      return { status: 400, body: { error: 'invalid_json' } }
    }
    const { to, text } = input
    const sent = await parley.send({
      type: 'sms',
      from: '+18045550100',
      to,
      body: text,
      attachments: null,
      timestamp: new Date().toISOString(),
    })
    return { status: 202, body: sent }
  }
  if (request.method === 'GET' && url.pathname === '/conversations') {
    return { status: 200, body: await parley.conversations.list() }
  }
  return { status: 404, body: { error: 'not_found' } }
}
// #endregion handler

// The body as a JSON object, or undefined when it is not one.
function parseJson(text) {
  try {
    const value = JSON.parse(text)
    return typeof value === 'object' && value !== null ? value : undefined
  } catch {
    return undefined
  }
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    let text = ''
    request.setEncoding('utf8')
    request.on('data', (chunk) => (text += chunk))
    request.on('end', () => resolve(text))
    request.on('error', reject)
  })
}

function reply(response, status, body) {
  response.writeHead(status, { 'Content-Type': 'application/json' })
  response.end(JSON.stringify(body))
}

async function selfTest(base) {
  const post = await fetch(`${base}/notify`, {
    method: 'POST',
    body: JSON.stringify({ to: '(202) 555-0123', text: 'Your order shipped' }),
  })
  console.log('send', post.status, JSON.stringify(await post.json()))
  const bad = await fetch(`${base}/notify`, {
    method: 'POST',
    body: JSON.stringify({ to: 'not a number', text: '' }),
  })
  const refusal = await bad.json()
  console.log('refused', bad.status, refusal.error, refusal.details.length)
  const garbled = await fetch(`${base}/notify`, { method: 'POST', body: 'x' })
  console.log('garbled', garbled.status, (await garbled.json()).error)
  await parley.receive(
    {
      type: 'sms',
      from: '+12025550123',
      to: '+18045550100',
      body: 'Thanks!',
      attachments: null,
      timestamp: new Date().toISOString(),
      messaging_provider_id: 'reply-1',
    },
    { channel: 'sms' },
  )
  // Threading runs in Parley's worker; wait until it has caught up.
  for (let tries = 0; tries < 100; tries += 1) {
    const page = await parley.conversations.list()
    if (page.items[0]?.messageCount === 2) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const list = await fetch(`${base}/conversations`)
  const page = await list.json()
  console.log(
    'conversations',
    page.total,
    'messages',
    page.items[0].messageCount,
  )
}

const selfTesting = process.argv.includes('--self-test')
server.listen(selfTesting ? 0 : 3000, '127.0.0.1', async () => {
  const base = `http://127.0.0.1:${server.address().port}`
  console.log(`listening on ${base}`)
  if (!selfTesting) return
  await selfTest(base)
  server.close()
  await parley.stop()
  await db.close()
})
