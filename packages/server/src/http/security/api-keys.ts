import { timingSafeEqual } from 'node:crypto'
import { sha256 } from './constant-time.js'

/** The fewest characters an API key may have. */
export const MIN_API_KEY_LENGTH = 16

/**
 * A configured API key. Only its SHA-256 digest is kept, so the key itself
 * cannot leak into logs, error messages or a dumped configuration.
 */
export interface ApiKey {
  /**
   * A stable, non-secret id: the first 8 hex characters of the key's
   * SHA-256. Safe to log, and used to scope idempotency keys per API key.
   */
  readonly id: string
  /** The key's SHA-256 digest, compared in constant time. */
  readonly digest: Buffer
}

/** Why a request's `Authorization` header was refused. */
export type BearerFailure =
  /** No `Authorization` header, or an empty one. */
  | 'missing'
  /** An `Authorization` header with another scheme (say `Basic`). */
  | 'not_bearer'
  /** `Bearer` without a token, or with spaces or control characters. */
  | 'malformed'
  /** A well-formed token that matches no configured key. */
  | 'unknown_key'

/** The outcome of {@link checkBearer}. */
export type BearerCheck =
  | { readonly ok: true; readonly keyId: string }
  | {
      readonly ok: false
      readonly reason: BearerFailure
      readonly message: string
    }

const VISIBLE_ASCII = /^[\x21-\x7e]+$/

const FAILURE_MESSAGES: Readonly<Record<BearerFailure, string>> = {
  missing: 'this route needs an API key: send Authorization: Bearer <key>',
  not_bearer: 'the Authorization header must use the Bearer scheme',
  malformed: 'the Authorization header does not carry a usable bearer token',
  unknown_key: 'the API key is not valid',
}

/**
 * Parses the `API_KEYS` setting: keys separated by commas, each trimmed,
 * empty entries ignored, repeated keys kept once. Text with no entries at
 * all gives no keys (the API stays open).
 *
 * @throws RangeError when an entry is shorter than
 *   {@link MIN_API_KEY_LENGTH} or holds anything but visible ASCII, or when
 *   two different keys share an id. The message names the entry by its
 *   position and never quotes it.
 */
export function parseApiKeys(text: string): readonly ApiKey[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
  const keys = entries.map((entry, index) => keyAt(entry, index + 1))
  return Object.freeze(distinctKeys(keys))
}

/**
 * Builds one {@link ApiKey} from its secret.
 *
 * @throws RangeError when the key is too short or not visible ASCII.
 */
export function createApiKey(secret: string): ApiKey {
  const problem = problemWith(secret)
  if (problem !== undefined) throw new RangeError(`the API key ${problem}`)
  return toApiKey(secret)
}

/**
 * Checks an `Authorization` header against the configured keys. The
 * scheme is case-insensitive (RFC 7235). The token is hashed and compared
 * with every key's digest in constant time, without stopping at a match,
 * so timing reveals neither which key matched nor how close a guess came.
 */
export function checkBearer(
  authorization: string | undefined,
  keys: readonly ApiKey[],
): BearerCheck {
  const token = bearerToken(authorization)
  if (typeof token !== 'string') return refuse(token.reason)

  const match = findKey(sha256(token), keys)
  if (match === undefined) return refuse('unknown_key')
  return { ok: true, keyId: match.id }
}

/**
 * The `WWW-Authenticate` value of a 401 answer (RFC 6750): the bare
 * challenge when no bearer token was offered, plus `error="invalid_token"`
 * when one was offered but is malformed or unknown.
 */
export function bearerChallenge(reason?: BearerFailure): string {
  const challenge = 'Bearer realm="parley"'
  switch (reason) {
    case undefined:
    case 'missing':
    case 'not_bearer':
      return challenge
    case 'malformed':
    case 'unknown_key':
      return `${challenge}, error="invalid_token"`
  }
}

function keyAt(entry: string, position: number): ApiKey {
  const problem = problemWith(entry)
  if (problem !== undefined) {
    throw new RangeError(`key number ${position} ${problem}`)
  }
  return toApiKey(entry)
}

function problemWith(secret: string): string | undefined {
  if (secret.length < MIN_API_KEY_LENGTH) {
    return `is shorter than ${MIN_API_KEY_LENGTH} characters`
  }
  if (!VISIBLE_ASCII.test(secret)) {
    return 'holds a character that is not visible ASCII (0x21 to 0x7E)'
  }
  return undefined
}

function toApiKey(secret: string): ApiKey {
  const digest = sha256(secret)
  return Object.freeze({ id: digest.toString('hex').slice(0, 8), digest })
}

// The same key listed twice is harmless and kept once; two different keys
// with one id would share idempotency scopes and log lines, so they are
// refused (a 1 in 4 billion chance per pair; replacing either key fixes it).
function distinctKeys(keys: readonly ApiKey[]): ApiKey[] {
  const byId = new Map<string, ApiKey>()
  for (const key of keys) {
    const seen = byId.get(key.id)
    if (seen !== undefined && !seen.digest.equals(key.digest)) {
      throw new RangeError(`two keys share the id ${key.id}; replace one`)
    }
    byId.set(key.id, key)
  }
  return [...byId.values()]
}

function bearerToken(
  authorization: string | undefined,
): string | { readonly reason: BearerFailure } {
  const header = authorization?.trim() ?? ''
  if (header === '') return { reason: 'missing' }

  const space = header.search(/\s/)
  const scheme = space === -1 ? header : header.slice(0, space)
  if (scheme.toLowerCase() !== 'bearer') return { reason: 'not_bearer' }

  const token = space === -1 ? '' : header.slice(space).trim()
  if (!VISIBLE_ASCII.test(token)) return { reason: 'malformed' }
  return token
}

// Every digest is compared, whatever matched before: the loop's length
// depends on the number of keys, never on the token.
function findKey(digest: Buffer, keys: readonly ApiKey[]): ApiKey | undefined {
  let match: ApiKey | undefined
  for (const key of keys) {
    const equal = timingSafeEqual(key.digest, digest)
    match = equal ? key : match
  }
  return match
}

function refuse(reason: BearerFailure): BearerCheck {
  return { ok: false, reason, message: FAILURE_MESSAGES[reason] }
}
