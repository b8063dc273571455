import { type Expression, type Kysely, type RawBuilder, sql } from 'kysely'
import { conversationIdentity } from '../messages/conversation-key.js'
import { makeSnippet } from '../messages/snippet.js'
import type {
  Channel,
  ChannelFamily,
  Direction,
  MessageStatus,
  NormalizedMessage,
} from '../messages/types.js'
import { PreparedStatement } from './prepared.js'
import { type ParleySchema, readId } from './schema.js'

/** The rows one threaded message produced. */
export interface Threaded {
  readonly messageId: string
  readonly conversationId: string
  /** True when this message created its conversation. */
  readonly createdConversation: boolean
}

/** What {@link threadMessage} writes besides the message itself. */
export interface ThreadOptions {
  readonly direction: Direction
  readonly status: MessageStatus
  readonly now: string
  readonly snippetLength: number
  readonly providerMessageId?: string
}

/** Thrown when the conversation upsert fails; counted apart. */
export class ConversationUpsertError extends Error {
  override readonly name = 'ConversationUpsertError'
}

/**
 * Threads a message into its conversation inside the caller's transaction:
 * creates or updates the conversation (one row per key, even under
 * concurrent first messages) and inserts the message, so that
 * `message_count` and `last_activity_at` change with the insert.
 */
export async function threadMessage(
  trx: Kysely<ParleySchema>,
  message: NormalizedMessage,
  options: ThreadOptions,
): Promise<Threaded> {
  const conversation = await upsertConversation(trx, message, options.now)
  const { rows } = await insertMessage.execute(trx, {
    conversationId: Number(conversation.id),
    direction: options.direction,
    channel: message.channel,
    from: message.from,
    to: message.to,
    fromParticipant: message.fromParticipant,
    toParticipant: message.toParticipant,
    subject: message.subject,
    body: message.body,
    snippet: makeSnippet(message.body, message.channel, options.snippetLength),
    attachments: JSON.stringify(message.attachments),
    timestamp: message.timestamp,
    status: options.status,
    providerMessageId: options.providerMessageId ?? null,
    now: options.now,
  })
  const row = rows[0]!
  return {
    messageId: readId(row.id),
    conversationId: conversation.id,
    createdConversation: conversation.created,
  }
}

async function upsertConversation(
  trx: Kysely<ParleySchema>,
  message: NormalizedMessage,
  now: string,
): Promise<{ id: string; created: boolean }> {
  const identity = conversationIdentity(
    message.family,
    message.fromParticipant,
    message.toParticipant,
  )
  try {
    // Update first: an INSERT that meets the unique key still consumes an
    // id from the sequence on both dialects, which would leave gaps in the
    // ids of later conversations. The insert below stays an upsert, so two
    // first messages racing each other still make one row.
    const updated = await touchConversation(
      trx,
      identity.key,
      message.timestamp,
    )
    if (updated) return { id: readId(updated.id), created: false }
    const { rows } = await insertConversation.execute(trx, {
      key: identity.key,
      channel: identity.family,
      participantA: identity.participantA,
      participantB: identity.participantB,
      timestamp: message.timestamp,
      now,
    })
    const row = rows[0]!
    // The insert writes a count of 1; an update always makes it larger.
    return { id: readId(row.id), created: Number(row.message_count) === 1 }
  } catch (error) {
    throw new ConversationUpsertError('conversation upsert failed', {
      cause: error,
    })
  }
}

async function touchConversation(
  trx: Kysely<ParleySchema>,
  key: string,
  timestamp: string,
): Promise<{ id: number | string } | undefined> {
  const { rows } = await updateConversation.execute(trx, { key, timestamp })
  return rows[0]
}

// The statements of threading, built once per database (see
// PreparedStatement): they run for every message.
const updateConversation = new PreparedStatement(
  'update conversation',
  (db, p: { key: string; timestamp: string }) =>
    db
      .updateTable('conversations')
      .set((eb) => ({
        message_count: eb('conversations.message_count', '+', 1),
        last_activity_at: latest(sql.val(p.timestamp)),
      }))
      .where('key', '=', p.key)
      .returning('id'),
)

const insertConversation = new PreparedStatement(
  'insert conversation',
  (
    db,
    p: {
      key: string
      channel: ChannelFamily
      participantA: string
      participantB: string
      timestamp: string
      now: string
    },
  ) =>
    db
      .insertInto('conversations')
      .values({
        key: p.key,
        channel: p.channel,
        participant_a: p.participantA,
        participant_b: p.participantB,
        message_count: 1,
        last_activity_at: p.timestamp,
        created_at: p.now,
      })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet((eb) => ({
          message_count: eb('conversations.message_count', '+', 1),
          last_activity_at: latest(sql.ref('excluded.last_activity_at')),
        })),
      )
      .returning(['id', 'message_count']),
)

const insertMessage = new PreparedStatement(
  'insert message',
  (
    db,
    p: {
      conversationId: number
      direction: Direction
      channel: Channel
      from: string
      to: string
      fromParticipant: string
      toParticipant: string
      subject: string | null
      body: string
      snippet: string
      attachments: string
      timestamp: string
      status: MessageStatus
      providerMessageId: string | null
      now: string
    },
  ) =>
    db
      .insertInto('messages')
      .values({
        conversation_id: p.conversationId,
        direction: p.direction,
        channel: p.channel,
        from_address: p.from,
        to_address: p.to,
        from_participant: p.fromParticipant,
        to_participant: p.toParticipant,
        subject: p.subject,
        body: p.body,
        snippet: p.snippet,
        attachments: p.attachments,
        timestamp: p.timestamp,
        status: p.status,
        provider_message_id: p.providerMessageId,
        created_at: p.now,
        updated_at: p.now,
      })
      .returning('id'),
)

// Messages may arrive out of order: keep the later of the stored activity
// time and the new message's timestamp (fixed-width UTC text on SQLite and
// timestamptz on Postgres both compare correctly).
function latest(candidate: Expression<unknown>): RawBuilder<string> {
  const stored = sql.ref('conversations.last_activity_at')
  return sql<string>`case when ${candidate} > ${stored} then ${candidate} else ${stored} end`
}
