// The consumer's scenario, shared by its ESM and its CommonJS entry: send
// one SMS, receive a reply, list. It takes core's modules as arguments so
// that each entry loads them its own way.
'use strict'

async function sendReceiveList(core, sqlite) {
  const db = sqlite.openSqlite({ filename: ':memory:' })
  const parley = await core.createParley({
    db,
    providers: [core.createMockProvider({ family: 'sms' })],
    config: { pollIntervalMs: 10 },
  })
  await parley.start()
  const sent = await parley.send({
    type: 'sms',
    from: '+18045550100',
    to: '(202) 555-0123',
    body: 'Your order shipped',
    attachments: null,
    timestamp: '2024-11-01T14:00:00Z',
  })
  await parley.receive(
    {
      type: 'sms',
      from: '+12025550123',
      to: '+18045550100',
      body: 'Thanks!',
      attachments: null,
      timestamp: '2024-11-01T14:05:00Z',
      messaging_provider_id: 'consumer-reply-1',
    },
    { channel: 'sms' },
  )
  const conversations = await threaded(parley)
  const messages = await parley.conversations.messages(sent.conversationId)
  const refused = await parley.send({}).catch((error) => error)
  await parley.stop()
  await db.close()
  return {
    sent: sent.id,
    conversations: conversations.total,
    messages: messages.items.map((message) => message.body),
    refused: core.isValidationError(refused) ? refused.code : String(refused),
  }
}

// The inbound worker threads the reply on its own; poll, bounded.
async function threaded(parley) {
  for (let tries = 0; tries < 200; tries += 1) {
    const page = await parley.conversations.list()
    if (page.items[0] && page.items[0].messageCount === 2) return page
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('the reply was not threaded in 5 s')
}

module.exports = { sendReceiveList }
