import {
  createParley,
  type LogFields,
  type Logger,
  type Parley,
  type ParleyDatabase,
} from '@parley/core'
import { afterEach, describe, expect, it } from 'vitest'
import {
  BULK_LIMITS,
  DIALECT_LABEL,
  messageRow,
  scriptedProvider,
  smsRequest,
  smsWebhook,
  testDb,
} from './support.js'

interface Line {
  readonly level: keyof Logger
  readonly event: string
  readonly fields: LogFields
}

function capturingLogger(lines: Line[]): Logger {
  const at =
    (level: keyof Logger) =>
    (event: string, fields: LogFields = {}) =>
      lines.push({ level, event, fields })
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  }
}

const FROM = '+18045551234'
const TO = '+12025550100'

let db: ParleyDatabase | undefined
let parley: Parley | undefined

afterEach(async () => {
  await parley?.stop()
  await db?.close()
  parley = undefined
  db = undefined
})

async function waitFor(check: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + 5000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in 5 s')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe(`what the workers log on ${DIALECT_LABEL}`, () => {
  it('names the message on every step from accept to its outcome, and the request on the accept', async () => {
    const lines: Line[] = []
    // The provider's error quotes the recipient, as Twilio's do.
    const provider = scriptedProvider('sms', (call) => ({
      kind: 'permanent',
      error: `The 'To' number ${call.message.to} is not a valid phone number`,
    }))
    db = await testDb()
    parley = await createParley({
      db,
      providers: [provider],
      logger: capturingLogger(lines),
      config: { ...BULK_LIMITS, breakerThreshold: 1 },
    })
    await parley.start()

    const { id } = await parley.send(smsRequest({ from: FROM, to: TO }), {
      requestId: 'req-1',
    })
    await waitFor(() =>
      lines.some((line) => line.event === 'dispatch.dead_lettered'),
    )

    const trail = lines.filter((line) => line.fields.message_id === id)
    expect(trail.map((line) => `${line.level} ${line.event}`)).toEqual([
      'info message.accepted',
      'debug message.addresses',
      'info dispatch.claimed',
      'debug dispatch.attempt_started',
      'error dispatch.dead_lettered',
    ])
    expect(trail[0]?.fields).toMatchObject({
      request_id: 'req-1',
      body_length: 'Hello there'.length,
    })
    // Addresses are on the debug line only, and nowhere else.
    const elsewhere = lines.filter((line) => line.event !== 'message.addresses')
    expect(JSON.stringify(elsewhere)).not.toContain(TO.slice(1))
    expect(JSON.stringify(elsewhere)).not.toContain(FROM.slice(1))
    expect(JSON.stringify(lines)).not.toContain('Hello there')
    const row = await messageRow(db, id)
    expect(row.status).toBe('failed')
    const dead = await parley.deadLetters.list('dispatch')
    expect(dead.items[0]?.lastError).toBe(
      "The 'To' number [address] is not a valid phone number",
    )
  })

  it('keeps the body and the addresses out of provider error text in their other encodings', async () => {
    const lines: Line[] = []
    const body = 'Meet me at 5+6 Main St'
    const form = (value: string) =>
      new URLSearchParams({ v: value }).toString().slice(2)
    // What a provider may echo: the form it was posted, and the numbers
    // written without "+" or as national digits.
    const provider = scriptedProvider('sms', (call) => ({
      kind: 'permanent',
      error:
        `rejected To=${form(call.message.to)}&From=${form(call.message.from)}` +
        `&Body=${form(call.message.body)} (${encodeURIComponent(call.message.body)}); ` +
        `number ${call.message.to.slice(1)} / ${call.message.to.slice(-10)} ` +
        `from ${call.message.from.slice(-10)}: ${call.message.body}`,
    }))
    db = await testDb()
    parley = await createParley({
      db,
      providers: [provider],
      logger: capturingLogger(lines),
      config: { ...BULK_LIMITS, breakerThreshold: 1 },
    })
    await parley.start()

    const { id } = await parley.send(smsRequest({ from: FROM, to: TO, body }))
    await waitFor(() =>
      lines.some((line) => line.event === 'dispatch.dead_lettered'),
    )

    const dead = await parley.deadLetters.list('dispatch')
    const lastError = dead.items[0]?.lastError ?? ''
    const elsewhere = JSON.stringify(
      lines.filter((line) => line.event !== 'message.addresses'),
    )
    for (const text of [lastError, elsewhere]) {
      for (const secret of [TO, FROM].flatMap((number) => [
        number.slice(1),
        number.slice(-10),
      ])) {
        expect(text).not.toContain(secret)
      }
      expect(text).not.toContain(form(body))
      expect(text).not.toContain(encodeURIComponent(body))
      expect(text).not.toContain(body)
    }
    expect(lastError).toContain(
      'rejected To=[address]&From=[address]&Body=[body]',
    )
    expect((await messageRow(db, id)).status).toBe('failed')
  })

  it('names the message whose call opened a provider breaker', async () => {
    const lines: Line[] = []
    const provider = scriptedProvider('sms', () => ({
      kind: 'transient',
      error: 'upstream 503',
    }))
    db = await testDb()
    parley = await createParley({
      db,
      providers: [provider],
      logger: capturingLogger(lines),
      config: { ...BULK_LIMITS, breakerThreshold: 1, maxRetries: 0 },
    })
    await parley.start()

    const { id } = await parley.send(smsRequest())
    await waitFor(() =>
      lines.some((line) => line.event === 'provider.breaker_transition'),
    )

    expect(
      lines.find((line) => line.event === 'provider.breaker_transition')
        ?.fields,
    ).toMatchObject({ from: 'closed', to: 'open', message_id: id })
  })

  it('follows an inbound event from accept to the message it became', async () => {
    const lines: Line[] = []
    db = await testDb()
    parley = await createParley({
      db,
      providers: [],
      logger: capturingLogger(lines),
      config: BULK_LIMITS,
    })
    await parley.start()

    await parley.receive(smsWebhook({ messaging_provider_id: 'SM-trail' }), {
      channel: 'sms',
      requestId: 'req-in',
    })
    await waitFor(() =>
      lines.some((line) => line.event === 'inbound.processed'),
    )

    const accepted = lines.find((line) => line.event === 'inbound.accepted')
    expect(accepted?.fields).toMatchObject({
      request_id: 'req-in',
      provider_message_id: 'SM-trail',
      duplicate: false,
    })
    const eventId = accepted?.fields.event_id
    const trail = lines.filter((line) => line.fields.event_id === eventId)
    expect(trail.map((line) => line.event)).toEqual([
      'inbound.accepted',
      'inbound.addresses',
      'inbound.claimed',
      'inbound.processed',
    ])
    expect(trail[3]?.fields.message_id).toBeTypeOf('string')
  })
})
