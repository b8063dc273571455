/**
 * The Deno tests' shared scenario: one outbound SMS, one inbound reply,
 * then the conversation and its messages, read back through the facade.
 * Runs under Deno against whichever storage the caller opened.
 */
import assert from 'node:assert/strict'
import {
  createMockProvider,
  createParley,
  type ParleyDatabase,
} from '@parley/core'

const OWN_NUMBER = '+18045550100'
const CUSTOMER = '+12025550123'

/** Sends, receives and lists on `db`, asserting what each step returns. */
export async function sendReceiveList(db: ParleyDatabase): Promise<void> {
  const parley = await createParley({
    db,
    providers: [createMockProvider({ family: 'sms' })],
    config: { pollIntervalMs: 10 },
  })
  await parley.start()
  try {
    await exercise(parley)
  } finally {
    await parley.stop()
  }
}

type Parley = Awaited<ReturnType<typeof createParley>>

async function exercise(parley: Parley): Promise<void> {
  const sent = await parley.send({
    type: 'sms',
    from: OWN_NUMBER,
    to: '(202) 555-0123',
    body: 'Your order shipped',
    attachments: null,
    timestamp: '2024-11-01T14:00:00Z',
  })
  assert.equal(sent.id, '1')
  assert.equal(sent.conversationId, '1')

  const received = await parley.receive(
    {
      type: 'sms',
      from: CUSTOMER,
      to: OWN_NUMBER,
      body: 'Thanks!',
      attachments: null,
      timestamp: '2024-11-01T15:05:00+01:00',
      messaging_provider_id: 'deno-reply-1',
    },
    { channel: 'sms' },
  )
  assert.equal(received.duplicate, false)

  const conversation = await threaded(parley, 2)
  assert.equal(conversation.key, `sms:${CUSTOMER}<->${OWN_NUMBER}`)
  const messages = await parley.conversations.messages(conversation.id)
  assert.deepEqual(
    messages.items.map((message) => [message.direction, message.body]),
    [
      ['outbound', 'Your order shipped'],
      ['inbound', 'Thanks!'],
    ],
  )
  assert.equal(messages.items[1]?.timestamp, '2024-11-01T14:05:00.000Z')
  assert.equal(parley.metrics.snapshot().conversations_created, 1)
}

// The inbound worker threads the reply on its own schedule; poll the list
// (bounded) until the conversation holds `count` messages.
async function threaded(parley: Parley, count: number) {
  const deadline = Date.now() + 10_000
  for (;;) {
    const page = await parley.conversations.list()
    assert.equal(page.total, 1)
    const conversation = page.items[0]!
    if (conversation.messageCount === count) return conversation
    assert.ok(Date.now() < deadline, 'the reply was not threaded in 10 s')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
