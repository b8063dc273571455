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
  const changes = readChanges(input.body)
  const problems = validate(mocks, changes)
  if (problems.length > 0) {
    throw new HttpError(
      'validation_failed',
      'the mock provider settings are invalid',
      {},
      problems,
    )
  }
  for (const mock of mocks) {
    const change = changes[mock.family]
    if (change) mock.configure(change)
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

type Changes = Partial<Record<Family, Partial<MockProviderSettings>>>

// Reads every field before giving up, so that a 400 names each bad one.
function readChanges(body: unknown): Changes {
  const fields = asObject(body, '(body)')
  const problems: FieldError[] = []
  const shared = readFamily(fields, '', problems)
  const changes: Changes = {}
  for (const family of ['sms', 'email'] as const) {
    const own = familyFields(fields[family], family, problems)
    changes[family] = { ...shared, ...readFamily(own, `${family}.`, problems) }
  }
  if (problems.length > 0) throw invalid(problems)
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
): Partial<MockProviderSettings> {
  const out: Record<string, unknown> = {}
  for (const [json, field] of Object.entries(FIELDS)) {
    const value = fields[json]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      problems.push({
        field: `${prefix}${json}`,
        message: 'must be a whole number',
      })
      continue
    }
    out[field] = value
  }
  return out as Partial<MockProviderSettings>
}

function validate(
  mocks: readonly MockProvider[],
  changes: Changes,
): FieldError[] {
  const problems: FieldError[] = []
  for (const mock of mocks) {
    const next = { ...mock.settings(), ...changes[mock.family] }
    const pcts: JsonField[] = ['timeout_pct', 'error_pct', 'ratelimit_pct']
    for (const json of pcts) {
      const value = next[FIELDS[json]]
      if (value < 0 || value > 100) {
        problems.push({
          field: `${mock.family}.${json}`,
          message: 'must be from 0 to 100',
        })
      }
    }
    if (next.timeoutPct + next.errorPct + next.rateLimitPct > 100) {
      problems.push({
        field: mock.family,
        message: 'the percentages must add up to at most 100',
      })
    }
    if (next.seed < 0 || next.seed > 0xffff_ffff) {
      problems.push({
        field: `${mock.family}.seed`,
        message: 'must be from 0 to 4294967295',
      })
    }
    if (next.retryAfterSecs < 0 || next.retryAfterSecs > 3600) {
      problems.push({
        field: `${mock.family}.retry_after_secs`,
        message: 'must be from 0 to 3600',
      })
    }
  }
  return dedupe(problems)
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
