// @parley/core under Deno, on Deno's built-in SQLite (node:sqlite): send
// an email, receive the reply through the webhook path, list the
// conversation and read the metrics. From the repository root, after
// `npm install` (which builds the packages):
//
//   deno run --allow-read --allow-write --allow-env examples/deno/main.ts [db file]
//
// Without a file the database lives in memory.
// #region create
import { createMockProvider, createParley } from '@parley/core'
import { openNodeSqlite } from '@parley/core/node-sqlite'

const db = await openNodeSqlite({ filename: Deno.args[0] ?? ':memory:' })
const parley = await createParley({
  db,
  providers: [createMockProvider({ family: 'email' })],
})
await parley.start() // the dispatch and inbound workers
// #endregion create

// #region send
const sent = await parley.send(
  {
    from: 'Shop <shop@example.com>',
    to: 'ann@example.com',
    subject: 'Your order shipped',
    body: '<p>It is on its way.</p>',
    attachments: [],
    timestamp: new Date().toISOString(),
  },
  { channel: 'email', idempotencyKey: 'order-1042-shipped' },
)
console.log(`queued message ${sent.id} in conversation ${sent.conversationId}`)
// #endregion send

// #region receive
// What your webhook handler passes on: the payload and its channel family.
const received = await parley.receive(
  {
    from: 'Ann <ann+orders@example.com>',
    to: 'shop@example.com',
    subject: 'Re: Your order shipped',
    body: 'Thank you!',
    attachments: [],
    timestamp: new Date().toISOString(),
    xillio_id: 'inbound-7f3a',
  },
  { channel: 'email' },
)
console.log(`reply accepted (duplicate: ${received.duplicate})`)
// #endregion receive

// The inbound worker threads the reply shortly, and counts it once its
// commit is on disk, a moment after the reply can be read: wait for both,
// bounded.
for (let tries = 0; tries < 200; tries += 1) {
  const { items } = await parley.conversations.list()
  const counted = parley.metrics.snapshot().worker_processed === 1
  if (items[0]?.messageCount === 2 && counted) break
  await new Promise((resolve) => setTimeout(resolve, 25))
}

// #region list
const conversations = await parley.conversations.list({ page: 1, pageSize: 20 })
for (const conversation of conversations.items) {
  const messages = await parley.conversations.messages(conversation.id)
  console.log(`${conversation.key}: ${conversation.messageCount} messages`)
  for (const message of messages.items) {
    console.log(`  ${message.direction} ${message.from}: ${message.snippet}`)
  }
}
// #endregion list

// #region metrics
const metrics = parley.metrics.snapshot()
console.log(
  `conversations created ${metrics.conversations_created}, ` +
    `inbound processed ${metrics.worker_processed}`,
)
// #endregion metrics

// #region stop
await parley.stop() // finishes or hands back claimed work
await db.close()
// #endregion stop
