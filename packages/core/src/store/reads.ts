import type { Kysely, Selectable } from 'kysely'
import type {
  Channel,
  ChannelFamily,
  Conversation,
  Direction,
  Message,
  MessageDetail,
  MessageStatus,
} from '../messages/types.js'
import {
  type ConversationsTable,
  type MessagesTable,
  type ParleySchema,
  readId,
  readNullableTimestamp,
  readTimestamp,
} from './schema.js'

/** A page window, already checked. */
export interface PageWindow {
  readonly page: number
  readonly pageSize: number
}

/** Conversations by last activity, newest first, then by id. */
export async function listConversations(
  db: Kysely<ParleySchema>,
  window: PageWindow,
): Promise<{ items: Conversation[]; total: number }> {
  const rows = await db
    .selectFrom('conversations')
    .selectAll()
    .orderBy('last_activity_at', 'desc')
    .orderBy('id', 'asc')
    .limit(window.pageSize)
    .offset((window.page - 1) * window.pageSize)
    .execute()
  const { total } = await db
    .selectFrom('conversations')
    .select((eb) => eb.fn.countAll<number | string>().as('total'))
    .executeTakeFirstOrThrow()
  return { items: rows.map(toConversation), total: Number(total) }
}

/** One conversation, or undefined. */
export async function findConversation(
  db: Kysely<ParleySchema>,
  id: number,
): Promise<Conversation | undefined> {
  const row = await db
    .selectFrom('conversations')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst()
  return row && toConversation(row)
}

/** A conversation's messages by timestamp, oldest first, then by id. */
export async function listMessages(
  db: Kysely<ParleySchema>,
  conversationId: number,
  window: PageWindow,
): Promise<{ items: Message[]; total: number }> {
  const rows = await db
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .orderBy('timestamp', 'asc')
    .orderBy('id', 'asc')
    .limit(window.pageSize)
    .offset((window.page - 1) * window.pageSize)
    .execute()
  const { total } = await db
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll<number | string>().as('total'))
    .where('conversation_id', '=', conversationId)
    .executeTakeFirstOrThrow()
  return { items: rows.map(toMessage), total: Number(total) }
}

/** One message with its delivery details, or undefined. */
export async function findMessageDetail(
  db: Kysely<ParleySchema>,
  id: number,
): Promise<MessageDetail | undefined> {
  const row = await db
    .selectFrom('messages')
    .leftJoin('dispatch_jobs', 'dispatch_jobs.message_id', 'messages.id')
    .selectAll('messages')
    .select([
      'dispatch_jobs.attempts as job_attempts',
      'dispatch_jobs.state as job_state',
      'dispatch_jobs.run_at as job_run_at',
      'dispatch_jobs.last_error as job_last_error',
    ])
    .where('messages.id', '=', id)
    .executeTakeFirst()
  if (!row) return undefined
  const pending = row.job_state === 'pending'
  return {
    ...toMessage(row),
    attempts: Number(row.job_attempts ?? 0),
    lastError: row.job_last_error ?? null,
    nextAttemptAt: pending ? readNullableTimestamp(row.job_run_at) : null,
    provider: row.provider,
    providerMessageId: row.provider_message_id,
  }
}

function toConversation(row: Selectable<ConversationsTable>): Conversation {
  return {
    id: readId(row.id),
    key: row.key,
    channel: row.channel as ChannelFamily,
    participantA: row.participant_a,
    participantB: row.participant_b,
    messageCount: Number(row.message_count),
    lastActivityAt: readTimestamp(row.last_activity_at),
  }
}

function toMessage(row: Selectable<MessagesTable>): Message {
  return {
    id: readId(row.id),
    conversationId: readId(row.conversation_id),
    direction: row.direction as Direction,
    channel: row.channel as Channel,
    from: row.from_address,
    to: row.to_address,
    subject: row.subject,
    body: row.body,
    snippet: row.snippet,
    attachments: JSON.parse(row.attachments) as string[],
    timestamp: readTimestamp(row.timestamp),
    status: row.status as MessageStatus,
  }
}
