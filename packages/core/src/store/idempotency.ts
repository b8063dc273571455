import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { IdempotencyInProgressError } from '../errors.js'
import { PreparedStatement } from './prepared.js'
import { type ParleySchema, readTimestamp } from './schema.js'

/** Proof that this caller holds an idempotency key's in-flight marker. */
export interface IdempotencyToken {
  readonly scope: string
  readonly key: string
  /** The marker's creation time: a stale takeover changes it. */
  readonly createdAt: string
}

/** What claiming an idempotency key found. */
export type IdempotencyClaim =
  /** First use (or the earlier holder crashed): run the request. */
  | { readonly kind: 'fresh'; readonly token: IdempotencyToken }
  /** Done before with the same body: the stored result. */
  | { readonly kind: 'replay'; readonly result: string }
  /** The same body is being processed right now. */
  | { readonly kind: 'in_progress' }
  /** The key was used with a different body. */
  | { readonly kind: 'reused' }

/** Where and when a claim runs. */
export interface ClaimRequest {
  readonly scope: string
  readonly key: string
  readonly fingerprint: string
  /** Now, ms since the epoch. */
  readonly now: number
  /** How long a key is kept. */
  readonly ttlMs: number
  /** After how long an unfinished marker counts as abandoned. */
  readonly staleMs: number
}

/**
 * Claims an idempotency key: inserts an in-flight marker, or reports what
 * an earlier request with the key left. Every step is a single statement
 * guarded by the unique (scope, key), so concurrent claimers (in one
 * process or many) see exactly one `fresh`.
 */
export async function claimIdempotencyKey(
  db: Kysely<ParleySchema>,
  request: ClaimRequest,
): Promise<IdempotencyClaim> {
  for (let round = 0; round < 4; round += 1) {
    const claim = await tryClaim(db, request)
    if (claim) return claim
  }
  // Only a pathological race (the row expiring and reappearing over and
  // over) ends here; telling the caller to retry is the safe answer.
  return { kind: 'in_progress' }
}

async function tryClaim(
  db: Kysely<ParleySchema>,
  request: ClaimRequest,
): Promise<IdempotencyClaim | undefined> {
  const now = new Date(request.now).toISOString()
  const inserted = await insertMarker.execute(db, {
    scope: request.scope,
    key: request.key,
    fingerprint: request.fingerprint,
    now,
    expiresAt: new Date(request.now + request.ttlMs).toISOString(),
  })
  if (inserted.rows.length > 0) return fresh(request, now)

  const row = await db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('scope', '=', request.scope)
    .where('key', '=', request.key)
    .executeTakeFirst()
  if (!row) return undefined
  if (readTimestamp(row.expires_at) <= now) {
    await deleteExpired(db, request, readTimestamp(row.expires_at))
    return undefined
  }
  if (row.fingerprint !== request.fingerprint) return { kind: 'reused' }
  if (row.state === 'done' && row.response_body !== null) {
    return { kind: 'replay', result: row.response_body }
  }
  return takeOverIfStale(db, request, readTimestamp(row.created_at), now)
}

async function takeOverIfStale(
  db: Kysely<ParleySchema>,
  request: ClaimRequest,
  createdAt: string,
  now: string,
): Promise<IdempotencyClaim | undefined> {
  const staleBefore = new Date(request.now - request.staleMs).toISOString()
  if (createdAt > staleBefore) return { kind: 'in_progress' }
  const taken = await db
    .updateTable('idempotency_keys')
    .set({
      created_at: now,
      expires_at: new Date(request.now + request.ttlMs).toISOString(),
    })
    .where('scope', '=', request.scope)
    .where('key', '=', request.key)
    .where('state', '=', 'in_flight')
    .where('created_at', '=', createdAt)
    .executeTakeFirst()
  return Number(taken.numUpdatedRows) === 1 ? fresh(request, now) : undefined
}

async function deleteExpired(
  db: Kysely<ParleySchema>,
  request: ClaimRequest,
  expiresAt: string,
): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('scope', '=', request.scope)
    .where('key', '=', request.key)
    .where('expires_at', '=', expiresAt)
    .execute()
}

function fresh(request: ClaimRequest, now: string): IdempotencyClaim {
  return {
    kind: 'fresh',
    token: { scope: request.scope, key: request.key, createdAt: now },
  }
}

/**
 * Stores the final result under the key, in the caller's transaction (the
 * same one that makes the request's writes, so that both commit or
 * neither does). When the marker is no longer this caller's (it stalled
 * past the stale limit and a repeat took the key over), it throws
 * {@link IdempotencyInProgressError}, rolling the writes back: the repeat
 * that holds the key now makes them, once.
 */
export async function completeIdempotencyKey(
  trx: Kysely<ParleySchema>,
  token: IdempotencyToken,
  result: string,
): Promise<void> {
  const done = await completeMarker.execute(trx, {
    scope: token.scope,
    key: token.key,
    createdAt: token.createdAt,
    result,
  })
  if (Number(done.numAffectedRows) !== 1) {
    throw new IdempotencyInProgressError()
  }
}

// The two statements of every request with a key (see PreparedStatement).
const insertMarker = new PreparedStatement(
  'insert idempotency marker',
  (
    db,
    p: {
      scope: string
      key: string
      fingerprint: string
      now: string
      expiresAt: string
    },
  ) =>
    db
      .insertInto('idempotency_keys')
      .values({
        scope: p.scope,
        key: p.key,
        fingerprint: p.fingerprint,
        state: 'in_flight',
        created_at: p.now,
        expires_at: p.expiresAt,
      })
      .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
      .returning('key'),
)

const completeMarker = new PreparedStatement(
  'complete idempotency marker',
  (db, p: { scope: string; key: string; createdAt: string; result: string }) =>
    db
      .updateTable('idempotency_keys')
      .set({ state: 'done', status_code: null, response_body: p.result })
      .where('scope', '=', p.scope)
      .where('key', '=', p.key)
      .where('state', '=', 'in_flight')
      .where('created_at', '=', p.createdAt),
)

/** Drops an in-flight marker after a failure, so a repeat runs afresh. */
export async function releaseIdempotencyKey(
  db: Kysely<ParleySchema>,
  token: IdempotencyToken,
): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('scope', '=', token.scope)
    .where('key', '=', token.key)
    .where('state', '=', 'in_flight')
    .where('created_at', '=', token.createdAt)
    .execute()
}

/**
 * The fingerprint of a request body: SHA-256 over its canonical JSON (keys
 * sorted at every level), so that key order and white space do not count
 * as a different body.
 */
export function fingerprintOf(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex')
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((key) => {
        const item = (value as Record<string, unknown>)[key]
        return `${JSON.stringify(key)}:${canonicalJson(item)}`
      })
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}
