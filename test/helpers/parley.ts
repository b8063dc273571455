/**
 * Request builders and readers of the Parley API shared by the process
 * tests, and a read-only view of a server's SQLite file.
 */
import Database from 'better-sqlite3'
import { expect } from 'vitest'
import { get } from './http.js'

/** Every field of `GET /metrics` (DESIGN section 7), `ts_unix_ms` first. */
export const METRIC_FIELDS = [
  'ts_unix_ms',
  'rate_limited',
  'breaker_open',
  'breaker_transitions',
  'dispatch_attempts',
  'dispatch_success',
  'dispatch_rate_limited',
  'dispatch_error',
  'provider_sms_mms_attempts',
  'provider_sms_mms_success',
  'provider_sms_mms_rate_limited',
  'provider_sms_mms_error',
  'provider_sms_mms_breaker_transitions',
  'provider_email_attempts',
  'provider_email_success',
  'provider_email_rate_limited',
  'provider_email_error',
  'provider_email_breaker_transitions',
  'worker_claimed',
  'worker_processed',
  'worker_error',
  'worker_dead_letter',
  'worker_latency_avg_us',
  'worker_latency_max_us',
  'invalid_routing',
  'conversations_created',
  'conversations_reused',
  'conversations_failures',
  'dispatch_short_circuited',
  'dispatch_dead_letter',
] as const

/** The metrics document. */
export type Metrics = Record<(typeof METRIC_FIELDS)[number], number>

/** A conversation item of the API. */
export interface ConversationItem {
  id: string
  key: string
  channel: string
  participant_a: string
  participant_b: string
  message_count: number
  last_activity_at: string
}

/** A message item of the API. */
export interface MessageItem {
  id: string
  conversation_id: string
  direction: 'outbound' | 'inbound'
  channel: 'sms' | 'mms' | 'email'
  from: string
  to: string
  subject?: string | null
  body: string
  snippet: string
  attachments: string[]
  timestamp: string
  status: string
}

/** The security headers every response carries (DESIGN section 4). */
export const SECURITY_HEADERS: Readonly<Record<string, string | RegExp>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': /default-src 'none'/,
}

type HeaderSource = Headers | Readonly<Record<string, unknown>>

function header(headers: HeaderSource, name: string): string | undefined {
  const value = headers instanceof Headers ? headers.get(name) : headers[name]
  return value === null || value === undefined ? undefined : String(value)
}

/** Asserts the request id and security headers of DESIGN section 4. */
export function expectCommonHeaders(headers: HeaderSource): void {
  expect(header(headers, 'x-request-id')).toMatch(/^[\x21-\x7e]{1,128}$/)
  for (const [name, wanted] of Object.entries(SECURITY_HEADERS)) {
    const value = header(headers, name)
    if (typeof wanted === 'string') expect(value, name).toBe(wanted)
    else expect(value, name).toMatch(wanted)
  }
}

/**
 * Asserts an error answer: the status, the body `{code, message,
 * request_id}` (plus `details` for validation) with the request id of the
 * `X-Request-Id` header, JSON content type and the common headers.
 */
export function expectError(
  response: { status: number; headers: HeaderSource; body: any },
  status: number,
  code: string,
): void {
  const context = JSON.stringify(response.body)
  expect(response.status, context).toBe(status)
  expect(header(response.headers, 'content-type')).toMatch(/^application\/json/)
  expectCommonHeaders(response.headers)
  const body = response.body as Record<string, unknown>
  const keys =
    code === 'validation_failed'
      ? ['code', 'details', 'message', 'request_id']
      : ['code', 'message', 'request_id']
  expect(Object.keys(body).sort(), context).toEqual(keys)
  expect(body.code).toBe(code)
  expect(typeof body.message).toBe('string')
  expect(body.message).not.toBe('')
  expect(body.request_id).toBe(header(response.headers, 'x-request-id'))
}

/** The field names of a validation error's `details`. */
export function detailFields(body: any): string[] {
  return ((body?.details ?? []) as Array<{ field: string }>).map(
    (detail) => detail.field,
  )
}

/** A valid outbound SMS request; `overrides` replace or add fields. */
export function smsSend(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    from: '+18045551234',
    to: '+12025550123',
    type: 'sms',
    body: 'Hello from Parley',
    attachments: null,
    timestamp: '2024-11-01T14:00:00Z',
    ...overrides,
  }
}

/** A valid outbound email request. */
export function emailSend(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    from: 'support@parley.example',
    to: 'ann@customer.example',
    subject: 'Hello',
    body: '<p>Hello</p>',
    attachments: [],
    timestamp: '2024-11-01T14:00:00Z',
    ...overrides,
  }
}

/** A valid inbound SMS webhook payload. */
export function smsWebhook(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...smsSend({ from: '+12025550123', to: '+18045551234' }),
    messaging_provider_id: 'SM-default',
    ...overrides,
  }
}

/** A valid inbound email webhook payload. */
export function emailWebhook(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...emailSend({
      from: 'ann@customer.example',
      to: 'support@parley.example',
    }),
    xillio_id: 'x-default',
    ...overrides,
  }
}

/** Reads `GET /metrics`, checking it answered 200. */
export async function readMetrics(base: string): Promise<Metrics> {
  const response = await get<Metrics>(base, '/metrics')
  expect(response.status).toBe(200)
  return response.body
}

/** Every conversation, page by page. */
export async function allConversations(
  base: string,
): Promise<ConversationItem[]> {
  const items: ConversationItem[] = []
  for (let page = 1; ; page += 1) {
    const response = await get(
      base,
      `/api/conversations?page=${page}&pageSize=200`,
    )
    expect(response.status).toBe(200)
    items.push(...(response.body.items as ConversationItem[]))
    if (items.length >= response.body.meta.total) return items
    if (response.body.items.length === 0) return items
  }
}

/** Every message of one conversation, page by page. */
export async function allMessages(
  base: string,
  conversationId: string,
): Promise<MessageItem[]> {
  const items: MessageItem[] = []
  for (let page = 1; ; page += 1) {
    const response = await get(
      base,
      `/api/conversations/${conversationId}/messages?page=${page}&pageSize=200`,
    )
    expect(response.status).toBe(200)
    items.push(...(response.body.items as MessageItem[]))
    if (items.length >= response.body.meta.total) return items
    if (response.body.items.length === 0) return items
  }
}

/**
 * Runs `work` over the server's SQLite file opened read-only (safe while
 * the server runs: WAL readers do not block it), then closes it.
 */
export function readDatabase<T>(
  path: string,
  work: (db: Database.Database) => T,
): T {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    return work(db)
  } finally {
    db.close()
  }
}

/** Row counts of a queue table by state. */
export function queueStates(
  db: Database.Database,
  table: 'dispatch_jobs' | 'inbound_events',
): Record<string, number> {
  const rows = db
    .prepare(`select state, count(*) as n from ${table} group by state`)
    .all() as Array<{ state: string; n: number }>
  return Object.fromEntries(rows.map((row) => [row.state, row.n]))
}

/**
 * Runs `task` over `items` with at most `limit` running at once, and
 * resolves the results in order.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const index = next
      next += 1
      results[index] = await task(items[index] as T, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return results
}
