import type {
  FieldError,
  MockProvider,
  MockProviderSettings,
} from '@parley/core'
import type { HandlerInput, HandlerResult } from './handlers.js'
import { HttpError } from './http-error.js'

type Family = 'sms' | 'email'

// JSON field name -> settings field, for reading and writing.
const FIELDS = {
  timeout_pct: 'timeoutPct',
  error_pct: 'errorPct',
  ratelimit_pct: 'rateLimitPct',
  seed: 'seed',
  retry_after_secs: 'retryAfterSecs',
} as const satisfies Record<string, keyof MockProviderSettings>

type JsonField = keyof typeof FIELDS

/** `GET /api/provider/mock/config`: each family's live settings. */
export function getMockConfig(mocks: readonly MockProvider[]): HandlerResult {
  requireMocks(mocks)
  return { status: 200, body: describe(mocks) }
}

/**
 * `PUT /api/provider/mock/config`: changes some settings of one family
 * (`{"sms": {...}}`) or both (fields at the top level). Every value is
 * checked before anything changes: percentages are whole numbers from 0 to
 * 100 adding up to at most 100.
 */
export function putMockConfig(
  mocks: readonly MockProvider[],
  input: HandlerInput,
): HandlerResult {
  requireMocks(mocks)
  const problems: FieldError[] = []
  const changes = readChanges(input.body, problems)
  problems.push(...validate(mocks, changes))
  // One entry per field: two mocks of a family find the same problems,
  // and a family that is not an object may also have a sum over 100.
  if (problems.length > 0) throw invalid(dedupe(problems))
  for (const mock of mocks) {
    const change = changes[mock.family]
    if (change) mock.configure(change as Partial<MockProviderSettings>)
  }
  return { status: 200, body: describe(mocks) }
}

function requireMocks(mocks: readonly MockProvider[]): void {
  if (mocks.length === 0) {
    throw new HttpError('not_found', 'no mock provider is configured')
  }
}

function describe(mocks: readonly MockProvider[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const family of ['sms', 'email'] as const) {
    const own = mocks.filter((mock) => mock.family === family)
    const first = own[0]
    if (!first) continue
    const settings = first.settings()
    const entry: Record<string, unknown> = { providers: own.map((m) => m.name) }
    for (const [json, field] of Object.entries(FIELDS))
      entry[json] = settings[field]
    out[family] = entry
  }
  return out
}

// A field's new value, or null when the value sent is not a whole number:
// null still overrides the top level, so the family's own bad field is the
// one reported and no range or sum check uses a value the client replaced.
type Change = Partial<Record<keyof MockProviderSettings, number | null>>
type Changes = Partial<Record<Family, Change>>

// Reads every field, adding a problem for each one that is not a whole
// number, so that the range checks still run on the others and the 400
// names each bad field at once.
function readChanges(body: unknown, problems: FieldError[]): Changes {
  const fields = asObject(body, '(body)')
  const shared = readFamily(fields, '', problems)
  const changes: Changes = {}
  for (const family of ['sms', 'email'] as const) {
    const own = familyFields(fields[family], family, problems)
    changes[family] = { ...shared, ...readFamily(own, `${family}.`, problems) }
  }
  return changes
}

function familyFields(
  value: unknown,
  family: Family,
  problems: FieldError[],
): Record<string, unknown> {
  if (value === undefined) return {}
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return value as Record<string, unknown>
  }
  problems.push({ field: family, message: 'must be a JSON object' })
  return {}
}

function readFamily(
  fields: Record<string, unknown>,
  prefix: string,
  problems: FieldError[],
): Change {
  const out: Change = {}
  for (const [json, field] of Object.entries(FIELDS)) {
    const value = fields[json]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      problems.push({
        field: `${prefix}${json}`,
        message: 'must be a whole number',
      })
      out[field] = null
      continue
    }
    out[field] = value
  }
  return out
}

const PERCENTAGES: JsonField[] = ['timeout_pct', 'error_pct', 'ratelimit_pct']

// The inclusive range of each field.
const RANGES: Record<JsonField, readonly [number, number]> = {
  timeout_pct: [0, 100],
  error_pct: [0, 100],
  ratelimit_pct: [0, 100],
  seed: [0, 0xffff_ffff],
  retry_after_secs: [0, 3600],
}

// Range-checks every whole-number field, and the sum of the percentages
// that are valid on their own: a sum over 100 is then wrong whatever the
// client does about the fields already named.
function validate(
  mocks: readonly MockProvider[],
  changes: Changes,
): FieldError[] {
  const problems: FieldError[] = []
  for (const mock of mocks) {
    const change = changes[mock.family] ?? {}
    const settings = mock.settings()
    let sum = 0
    for (const [json, field] of Object.entries(FIELDS) as Array<
      [JsonField, keyof MockProviderSettings]
    >) {
      const value = field in change ? change[field] : settings[field]
      if (value === null || value === undefined) continue
      const [min, max] = RANGES[json]
      if (value < min || value > max) {
        problems.push({
          field: `${mock.family}.${json}`,
          message: `must be from ${min} to ${max}`,
        })
      } else if (PERCENTAGES.includes(json)) {
        sum += value
      }
    }
    if (sum > 100) {
      problems.push({
        field: mock.family,
        message: 'the percentages must add up to at most 100',
      })
    }
  }
  return problems
}

function dedupe(problems: FieldError[]): FieldError[] {
  const seen = new Set<string>()
  return problems.filter((p) => !seen.has(p.field) && seen.add(p.field))
}

function asObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return value as Record<string, unknown>
  }
  throw invalid([{ field, message: 'must be a JSON object' }])
}

function invalid(details: FieldError[]): HttpError {
  return new HttpError(
    'validation_failed',
    'the mock provider settings are invalid',
    {},
    details,
  )
}
