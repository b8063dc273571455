import { type FieldError, ValidationError } from '../errors.js'
import { parseEmail } from './email-address.js'
import { parsePhone } from './phone.js'
import { readInstant } from './timestamp.js'
import type { Channel, ChannelFamily, NormalizedMessage } from './types.js'

/** What validation needs to know beyond the request itself. */
export interface ValidationOptions {
  /** Region for numbers written without `+`, e.g. `US`. */
  readonly defaultRegion: string
  /** Most attachments one message may carry. */
  readonly maxAttachments: number
}

/** A validated inbound message and the provider's id for it. */
export interface NormalizedInbound {
  readonly message: NormalizedMessage
  readonly providerMessageId: string
}

type Fields = Readonly<Record<string, unknown>>

const PROVIDER_ID_FIELD: Readonly<Record<ChannelFamily, string>> = {
  sms: 'messaging_provider_id',
  email: 'xillio_id',
}
const MAX_PROVIDER_ID_LENGTH = 255
const MAX_SUBJECT_LENGTH = 998
// A lone surrogate half cannot be encoded as UTF-8, so it cannot be kept
// byte for byte; NUL cannot be stored by Postgres.
const UNSTORABLE =
  /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * True when `text` can be stored and returned byte for byte on every
 * backend: it holds no NUL (Postgres refuses it) and no lone surrogate
 * half (which has no UTF-8 form).
 */
export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text)
}

/**
 * Validates and normalizes an outbound request of the given family. Throws
 * a {@link ValidationError} that lists every bad field at once.
 */
export function validateSend(
  family: ChannelFamily,
  input: unknown,
  options: ValidationOptions,
): NormalizedMessage {
  const fields = asObject(input)
  const errors: FieldError[] = []
  const message = readMessage(family, fields, errors, options, 'outbound')
  if (errors.length > 0 || !message) throw new ValidationError(errors)
  return message
}

/**
 * Validates and normalizes an inbound webhook payload of the given family:
 * the send fields plus the provider's id. An inbound SMS may come from an
 * alphanumeric sender ID.
 */
export function validateInbound(
  family: ChannelFamily,
  input: unknown,
  options: ValidationOptions,
): NormalizedInbound {
  const fields = asObject(input)
  const errors: FieldError[] = []
  const message = readMessage(family, fields, errors, options, 'inbound')
  const idField = PROVIDER_ID_FIELD[family]
  const providerMessageId = readString(fields, idField, errors, {
    nonEmpty: true,
    maxLength: MAX_PROVIDER_ID_LENGTH,
  })
  if (errors.length > 0 || !message || providerMessageId === undefined) {
    throw new ValidationError(errors)
  }
  return { message, providerMessageId }
}

function asObject(input: unknown): Fields {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError([
      { field: '(body)', message: 'must be a JSON object' },
    ])
  }
  return input as Fields
}

function readMessage(
  family: ChannelFamily,
  fields: Fields,
  errors: FieldError[],
  options: ValidationOptions,
  direction: 'outbound' | 'inbound',
): NormalizedMessage | undefined {
  const channel = readChannel(family, fields, errors)
  const from = readString(fields, 'from', errors, {})
  const to = readString(fields, 'to', errors, {})
  const subject = family === 'email' ? readSubject(fields, errors) : null
  const body = readString(fields, 'body', errors, {
    nonEmpty: channel !== 'mms',
  })
  const attachments = readAttachments(fields, errors, options)
  const timestamp = readTimestamp(fields, errors)
  if (channel === 'mms' && attachments?.length === 0) {
    errors.push({
      field: 'attachments',
      message: 'an MMS needs at least one attachment',
    })
  }

  const allowSenderId = family === 'sms' && direction === 'inbound'
  const fromParticipant = normalizeAddress(family, 'from', from, errors, {
    region: options.defaultRegion,
    allowSenderId,
  })
  const toParticipant = normalizeAddress(family, 'to', to, errors, {
    region: options.defaultRegion,
    allowSenderId: false,
  })
  if (
    errors.length > 0 ||
    channel === undefined ||
    from === undefined ||
    to === undefined ||
    body === undefined ||
    attachments === undefined ||
    timestamp === undefined ||
    fromParticipant === undefined ||
    toParticipant === undefined
  ) {
    return undefined
  }
  return {
    channel,
    family,
    from,
    to,
    fromParticipant,
    toParticipant,
    subject: subject ?? null,
    body,
    attachments,
    timestamp,
  }
}

function readChannel(
  family: ChannelFamily,
  fields: Fields,
  errors: FieldError[],
): Channel | undefined {
  if (family === 'email') return 'email'
  const type = fields.type
  if (type === 'sms' || type === 'mms') return type
  errors.push({
    field: 'type',
    message: type === undefined ? 'is required' : 'must be "sms" or "mms"',
  })
  return undefined
}

interface StringRules {
  readonly nonEmpty?: boolean
  readonly maxLength?: number
}

function readString(
  fields: Fields,
  field: string,
  errors: FieldError[],
  rules: StringRules,
): string | undefined {
  const value = fields[field]
  const problem = stringProblem(value, rules)
  if (problem) {
    errors.push({ field, message: problem })
    return undefined
  }
  return value as string
}

function stringProblem(value: unknown, rules: StringRules): string | null {
  if (value === undefined || value === null) return 'is required'
  if (typeof value !== 'string') return 'must be a string'
  if (!isStorableText(value)) {
    return 'must not contain NUL characters or unpaired surrogates'
  }
  if (rules.nonEmpty && value.trim() === '') return 'must not be empty'
  if (rules.maxLength !== undefined && value.length > rules.maxLength) {
    return `must be at most ${rules.maxLength} characters`
  }
  return null
}

function readSubject(
  fields: Fields,
  errors: FieldError[],
): string | null | undefined {
  const value = fields.subject
  if (value === undefined || value === null) return null
  const problem = stringProblem(value, { maxLength: MAX_SUBJECT_LENGTH })
  if (problem) {
    errors.push({ field: 'subject', message: problem })
    return undefined
  }
  // A line break in a subject would inject mail headers downstream.
  if (/[\r\n]/.test(value as string)) {
    errors.push({ field: 'subject', message: 'must be a single line' })
    return undefined
  }
  return value as string
}

function readAttachments(
  fields: Fields,
  errors: FieldError[],
  options: ValidationOptions,
): readonly string[] | undefined {
  const value = fields.attachments
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) {
    errors.push({ field: 'attachments', message: 'must be an array of URLs' })
    return undefined
  }
  if (value.length > options.maxAttachments) {
    errors.push({
      field: 'attachments',
      message: `must hold at most ${options.maxAttachments} URLs`,
    })
    return undefined
  }
  const before = errors.length
  value.forEach((item: unknown, index) => {
    const problem = attachmentProblem(item)
    if (problem)
      errors.push({ field: `attachments[${index}]`, message: problem })
  })
  return errors.length === before ? (value as string[]) : undefined
}

function attachmentProblem(item: unknown): string | null {
  const problem = stringProblem(item, { nonEmpty: true, maxLength: 2048 })
  if (problem) return problem
  try {
    const url = new URL(item as string)
    const web = url.protocol === 'http:' || url.protocol === 'https:'
    return web && url.hostname !== '' ? null : 'must be an http(s) URL'
  } catch {
    return 'must be an http(s) URL'
  }
}

function readTimestamp(
  fields: Fields,
  errors: FieldError[],
): string | undefined {
  const value = readString(fields, 'timestamp', errors, {})
  if (value === undefined) return undefined
  const instant = readInstant(value)
  if (instant === 'form' || instant === 'years') {
    errors.push({
      field: 'timestamp',
      message:
        instant === 'form'
          ? 'must be an ISO-8601 instant with Z or an offset'
          : 'must fall in the UTC years 0001 to 9999',
    })
    return undefined
  }
  return instant
}

interface AddressRules {
  readonly region: string
  readonly allowSenderId: boolean
}

function normalizeAddress(
  family: ChannelFamily,
  field: string,
  value: string | undefined,
  errors: FieldError[],
  rules: AddressRules,
): string | undefined {
  if (value === undefined) return undefined
  const parsed =
    family === 'sms'
      ? parsePhone(value, rules.region, rules.allowSenderId)
      : parseEmail(value)
  if (parsed.ok) return parsed.participant
  errors.push({ field, message: parsed.reason })
  return undefined
}
