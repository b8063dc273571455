/**
 * Optional API keys on the real server process (DESIGN section 4, issue
 * 4): with `API_KEYS` set, every /api route but the webhooks needs
 * `Authorization: Bearer <key>`; health, readiness, metrics and the
 * webhooks are exempt; a server with keys but unsigned webhooks warns at
 * start; and no key ever reaches the logs.
 */
import { randomBytes } from 'node:crypto'
import { generateSendGridKeyPair } from '@parley/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, type JsonResponse, post, rawRequest } from './helpers/http.js'
import {
  emailWebhook,
  expectError,
  readDatabase,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const KEY_A = `pk_a_${randomBytes(16).toString('hex')}`
const KEY_B = `pk_b_${randomBytes(16).toString('hex')}`
// Well-formed tokens that are not keys: none of them may be logged either.
const WRONG = [
  `pk_x_${randomBytes(16).toString('hex')}`,
  `${KEY_A}x`,
  KEY_A.slice(0, -1),
]

function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` }
}

function storedMessages(databasePath: string): number {
  return readDatabase(
    databasePath,
    (db) =>
      (db.prepare('select count(*) as n from messages').get() as { n: number })
        .n,
  )
}

/** Asserts a 401 with the bearer challenge (plus `invalid_token` when given). */
function expectUnauthorized(
  response: JsonResponse,
  invalidToken: boolean,
): void {
  expectError(response, 401, 'unauthorized')
  const challenge = response.headers.get('www-authenticate')
  expect(challenge).toMatch(/^Bearer realm="parley"/)
  if (invalidToken) expect(challenge).toMatch(/error="invalid_token"/)
  else expect(challenge).not.toMatch(/error=/)
  // The edge metered the request before checking the key.
  expect(response.headers.get('ratelimit-limit')).toMatch(/^\d+$/)
  for (const key of [KEY_A, KEY_B]) expect(response.text).not.toContain(key)
}

describe('API keys', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: { API_KEYS: ` ${KEY_A}, ${KEY_B} ,`, LOG_LEVEL: 'debug' },
    })
  })

  it('refuses an API request without an Authorization header with 401 and a bare Bearer challenge', async () => {
    expectUnauthorized(await get(server.url, '/api/conversations'), false)
    expectUnauthorized(await get(server.url, '/api/messages/1'), false)
    // Before routing: an unknown /api path does not reveal itself as 404.
    expectUnauthorized(await get(server.url, '/api/no-such-route'), false)
  })

  it('refuses another scheme, a malformed token and a wrong key with 401', async () => {
    const url = server.url
    expectUnauthorized(
      await get(url, '/api/conversations', {
        Authorization: `Basic ${Buffer.from(`user:${KEY_A}`).toString('base64')}`,
      }),
      false,
    )
    expectUnauthorized(
      await get(url, '/api/conversations', { Authorization: 'Bearer' }),
      true,
    )
    expectUnauthorized(
      await get(url, '/api/conversations', {
        Authorization: `Bearer ${KEY_A} ${KEY_B}`,
      }),
      true,
    )
    for (const token of WRONG) {
      expectUnauthorized(
        await get(url, '/api/conversations', bearer(token)),
        true,
      )
    }
  })

  it('refuses percent-encoded spellings of API paths without a key, as the router reads them the same', async () => {
    const before = storedMessages(server.databasePath)
    for (const path of [
      '/%61pi/conversations',
      '/%61%70%69/conversations',
      '/%61pi/messages/1',
      '/api/%63onversations',
    ]) {
      expectUnauthorized(await get(server.url, path), false)
    }
    expectUnauthorized(
      await post(server.url, '/%61pi/messages/sms', smsSend()),
      false,
    )
    expect(storedMessages(server.databasePath)).toBe(before)
  })

  it('refuses a send without a valid key and stores nothing', async () => {
    const before = storedMessages(server.databasePath)
    expectUnauthorized(
      await post(server.url, '/api/messages/sms', smsSend()),
      false,
    )
    expectUnauthorized(
      await post(server.url, '/api/messages/sms', smsSend(), bearer(WRONG[0]!)),
      true,
    )
    expect(storedMessages(server.databasePath)).toBe(before)
  })

  it('serves API requests that carry either configured key, whatever the case of the scheme', async () => {
    const list = await get(server.url, '/api/conversations', bearer(KEY_A))
    expect(list.status, list.text).toBe(200)
    const send = await post(
      server.url,
      '/api/messages/sms',
      smsSend(),
      bearer(KEY_B),
    )
    expect(send.status, send.text).toBe(202)
    const read = await get(server.url, `/api/messages/${send.body.id}`, {
      Authorization: `bearer ${KEY_A}`,
    })
    expect(read.status, read.text).toBe(200)
  })

  it('scopes an Idempotency-Key to the API key: another key with the same Idempotency-Key is a new request', async () => {
    const body = smsSend({ body: 'keyed twice' })
    const idempotency = { 'Idempotency-Key': 'same-for-both-keys' }
    const a = await post(server.url, '/api/messages/sms', body, {
      ...bearer(KEY_A),
      ...idempotency,
    })
    const aAgain = await post(server.url, '/api/messages/sms', body, {
      ...bearer(KEY_A),
      ...idempotency,
    })
    const b = await post(server.url, '/api/messages/sms', body, {
      ...bearer(KEY_B),
      ...idempotency,
    })

    expect(a.status, a.text).toBe(202)
    expect(aAgain.headers.get('idempotent-replayed')).toBe('true')
    expect(aAgain.body.id).toBe(a.body.id)
    expect(b.status, b.text).toBe(202)
    expect(b.headers.get('idempotent-replayed')).toBeNull()
    expect(b.body.id).not.toBe(a.body.id)
  })

  it('leaves health, readiness, metrics and the webhooks open without a key', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const answer = await rawRequest(server.url, path)
      expect(answer.status, path).toBe(200)
    }
    const sms = await post(server.url, '/api/webhooks/sms', smsWebhook())
    expect(sms.status, sms.text).toBe(202)
    const email = await post(server.url, '/api/webhooks/email', emailWebhook())
    expect(email.status, email.text).toBe(202)
    const status = await post(server.url, '/api/webhooks/sms/status', {
      MessageSid: 'SM-nobody',
      MessageStatus: 'delivered',
    })
    expect(status.status, status.text).toBe(200)
    const events = await post(server.url, '/api/webhooks/email/events', [])
    expect(events.status, events.text).toBe(200)
  })

  it('warns at start that the webhooks accept unsigned posts', () => {
    const warning = server
      .logLines()
      .find((line) => line.event === 'security.webhooks_unsigned')
    expect(warning, server.describeOutput()).toMatchObject({ level: 'warn' })
    expect(String(warning?.message)).toMatch(/SMS webhooks/)
    expect(String(warning?.message)).toMatch(/email webhooks/)
    expect(
      server.logLines().some((line) => line.event === 'security.api_open'),
    ).toBe(false)
  })

  it('never writes a key, valid or not, to stdout or stderr', async () => {
    await server.stop()
    const output = server.stdout + server.stderr
    expect(output).toContain('http.request')
    for (const secret of [KEY_A, KEY_B, ...WRONG]) {
      expect(output).not.toContain(secret)
      // Nor the part after a prefix: a key cut at the front is still a leak.
      expect(output).not.toContain(secret.slice(8))
    }
  })
})

describe('API keys with every webhook signed', () => {
  it('does not warn about unsigned webhooks when every webhook secret is set', async () => {
    const server = await startServerProcess({
      env: {
        API_KEYS: KEY_A,
        WEBHOOK_SMS_AUTH_TOKEN: 'twilio-auth-token-for-tests',
        WEBHOOK_EMAIL_SECRET: `whsec_${randomBytes(24).toString('base64')}`,
        WEBHOOK_SENDGRID_PUBLIC_KEY: generateSendGridKeyPair().publicKey,
      },
    })
    const events = server.logLines().map((line) => line.event)
    expect(events).not.toContain('security.webhooks_unsigned')
    expect(events).not.toContain('security.api_open')
  })
})
