import { type Expression, type Kysely, type RawBuilder, sql } from 'kysely'
import { conversationIdentity } from '../messages/conversation-key.js'
import { makeSnippet } from '../messages/snippet.js'
import type {
  Direction,
  MessageStatus,
  NormalizedMessage,
} from '../messages/types.js'
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

/**
 * The lock key of a write that threads `message`: its conversation row is
 * the one that concurrent writers contend for (see GroupCommitter.submit).
 */
export function conversationLockKey(message: NormalizedMessage): string {
  const { key } = conversationIdentity(
    message.family,
    message.fromParticipant,
    message.toParticipant,
  )
  return `conversation:${key}`
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
  const row = await trx
    .insertInto('messages')
    .values({
      conversation_id: Number(conversation.id),
      direction: options.direction,
      channel: message.channel,
      from_address: message.from,
      to_address: message.to,
      from_participant: message.fromParticipant,
      to_participant: message.toParticipant,
      subject: message.subject,
      body: message.body,
      snippet: makeSnippet(
        message.body,
        message.channel,
        options.snippetLength,
      ),
      attachments: JSON.stringify(message.attachments),
      timestamp: message.timestamp,
      status: options.status,
      provider_message_id: options.providerMessageId ?? null,
      created_at: options.now,
      updated_at: options.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
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
    const row = await trx
      .insertInto('conversations')
      .values({
        key: identity.key,
        channel: identity.family,
        participant_a: identity.participantA,
        participant_b: identity.participantB,
        message_count: 1,
        last_activity_at: message.timestamp,
        created_at: now,
      })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet((eb) => ({
          message_count: eb('conversations.message_count', '+', 1),
          last_activity_at: latest(sql.ref('excluded.last_activity_at')),
        })),
      )
      .returning(['id', 'message_count'])
      .executeTakeFirstOrThrow()
    // The insert writes a count of 1; an update always makes it larger.
    return { id: readId(row.id), created: Number(row.message_count) === 1 }
  } catch (error) {
    throw new ConversationUpsertError('conversation upsert failed', {
      cause: error,
    })
  }
}

function touchConversation(
  trx: Kysely<ParleySchema>,
  key: string,
  timestamp: string,
) {
  return trx
    .updateTable('conversations')
    .set((eb) => ({
      message_count: eb('conversations.message_count', '+', 1),
      last_activity_at: latest(sql.val(timestamp)),
    }))
    .where('key', '=', key)
    .returning('id')
    .executeTakeFirst()
}

// Messages may arrive out of order: keep the later of the stored activity
// time and the new message's timestamp (fixed-width UTC text on SQLite and
// timestamptz on Postgres both compare correctly).
function latest(candidate: Expression<unknown>): RawBuilder<string> {
  const stored = sql.ref('conversations.last_activity_at')
  return sql<string>`case when ${candidate} > ${stored} then ${candidate} else ${stored} end`
}
