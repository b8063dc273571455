import { randomInt } from 'node:crypto'
import type { FaultRates } from '@parley/core'

/** The channel families the mock server speaks for. */
export type MockFamily = 'sms' | 'email'

/**
 * How the mock provider server answers the calls of one family. The fault
 * shares and seed follow the same rule as the in-process mock provider,
 * so the same seed gives the same outcome per (message id, attempt).
 */
export interface MockBehaviour extends FaultRates {
  /** Seed of the fault schedule, 0 to 4294967295. @default random */
  readonly seed: number
  /** Seconds sent in `Retry-After` with a 429, 0 to 3600. @default 1 */
  readonly retryAfterSecs: number
  /**
   * How long a `timeout` fault holds the request before dropping the
   * connection without an answer, in ms (0 to 3600000); `null` holds it
   * until the client goes away. @default null
   */
  readonly hangMs: number | null
  /** Delay before every answer, in ms (0 to 600000). @default 0 */
  readonly slowMs: number
  /**
   * Answer every call with this status (200 to 599), ignoring credentials
   * and faults: an error body in the provider's style from 400, a normal
   * success body below. `null` answers normally. @default null
   */
  readonly forceStatus: number | null
}

/** The behaviour of each family. */
export interface MockProviderConfig {
  /** The Twilio-style API's behaviour. */
  readonly sms: MockBehaviour
  /** The SendGrid-style API's behaviour. */
  readonly email: MockBehaviour
}

/** A change of behaviour: shared fields, then each family's own. */
export type MockBehaviourPatch = Partial<MockBehaviour> & {
  readonly sms?: Partial<MockBehaviour>
  readonly email?: Partial<MockBehaviour>
}

/** One invalid field, named as in the JSON control API or the options. */
export interface MockConfigProblem {
  readonly field: string
  readonly message: string
}

type Key = keyof MockBehaviour

interface FieldRule {
  readonly key: Key
  /** The field's name in the JSON control API. */
  readonly json: string
  readonly min: number
  readonly max: number
  readonly nullable: boolean
}

const rule = (key: Key, json: string, max: number, nullable = false) =>
  ({ key, json, min: 0, max, nullable }) as const

const RULES: readonly FieldRule[] = [
  rule('seed', 'seed', 0xffff_ffff),
  rule('timeoutPct', 'timeout_pct', 100),
  rule('errorPct', 'error_pct', 100),
  rule('rateLimitPct', 'ratelimit_pct', 100),
  rule('retryAfterSecs', 'retry_after_secs', 3600),
  rule('hangMs', 'hang_ms', 3_600_000, true),
  rule('slowMs', 'slow_ms', 600_000),
  { ...rule('forceStatus', 'force_status', 599, true), min: 200 },
]

/** The behaviour of a family that nothing configured. */
export function defaultBehaviour(): MockBehaviour {
  return {
    seed: randomInt(0, 0x1_0000_0000),
    timeoutPct: 0,
    errorPct: 0,
    rateLimitPct: 0,
    retryAfterSecs: 1,
    hangMs: null,
    slowMs: 0,
    forceStatus: null,
  }
}

/**
 * Applies a patch: shared fields to both families, then each family's own.
 * Returns the new configuration and its problems (named as `naming`
 * says); the caller keeps the old one when there are problems.
 */
export function patchConfig(
  config: MockProviderConfig,
  patch: MockBehaviourPatch,
  naming: 'json' | 'options',
): { config: MockProviderConfig; problems: MockConfigProblem[] } {
  const { sms, email, ...shared } = patch
  const next = {
    sms: Object.freeze({ ...config.sms, ...defined(shared), ...defined(sms) }),
    email: Object.freeze({
      ...config.email,
      ...defined(shared),
      ...defined(email),
    }),
  }
  const problems = [
    ...behaviourProblems(next.sms, `sms.`, naming),
    ...behaviourProblems(next.email, `email.`, naming),
  ]
  return { config: Object.freeze(next), problems }
}

function behaviourProblems(
  behaviour: MockBehaviour,
  prefix: string,
  naming: 'json' | 'options',
): MockConfigProblem[] {
  const problems: MockConfigProblem[] = []
  for (const field of RULES) {
    const value = behaviour[field.key]
    if (value === null ? field.nullable : inRange(value, field)) continue
    problems.push({
      field: `${prefix}${nameOf(field, naming)}`,
      message: `must be a whole number from ${field.min} to ${field.max}${
        field.nullable ? ', or null' : ''
      } (received ${JSON.stringify(value)})`,
    })
  }
  const sum = behaviour.timeoutPct + behaviour.errorPct + behaviour.rateLimitPct
  if (problems.length === 0 && sum > 100) {
    problems.push({
      field: prefix.slice(0, -1),
      message: `the percentages must add up to at most 100 (received ${sum})`,
    })
  }
  return problems
}

/**
 * Reads a JSON patch of the control API: fields in snake_case at the top
 * level (both families) or under `sms` / `email`. Unknown fields are
 * problems, so that a misspelt setting is not silently ignored.
 */
export function patchFromJson(body: unknown): {
  patch: MockBehaviourPatch
  problems: MockConfigProblem[]
} {
  if (!isObject(body)) {
    return {
      patch: {},
      problems: [{ field: '(body)', message: 'must be a JSON object' }],
    }
  }
  const problems: MockConfigProblem[] = []
  const { sms, email, ...shared } = body
  const patch: Record<string, unknown> = readFields(shared, '', problems)
  for (const [family, fields] of [
    ['sms', sms],
    ['email', email],
  ] as const) {
    if (fields === undefined) continue
    if (!isObject(fields)) {
      problems.push({ field: family, message: 'must be a JSON object' })
      continue
    }
    patch[family] = readFields(fields, `${family}.`, problems)
  }
  return { patch: patch as MockBehaviourPatch, problems }
}

function readFields(
  fields: Record<string, unknown>,
  prefix: string,
  problems: MockConfigProblem[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(fields)) {
    const field = RULES.find((candidate) => candidate.json === name)
    if (field === undefined) {
      problems.push({ field: `${prefix}${name}`, message: 'is not a setting' })
    } else if (typeof value === 'number' || value === null) {
      out[field.key] = value
    } else {
      problems.push({ field: `${prefix}${name}`, message: 'must be a number' })
    }
  }
  return out
}

/** The configuration as the control API shows it (snake_case). */
export function configToJson(config: MockProviderConfig): unknown {
  const familyJson = (behaviour: MockBehaviour) =>
    Object.fromEntries(RULES.map((field) => [field.json, behaviour[field.key]]))
  return { sms: familyJson(config.sms), email: familyJson(config.email) }
}

function inRange(value: unknown, field: FieldRule): boolean {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= field.min &&
    value <= field.max
  )
}

function nameOf(field: FieldRule, naming: 'json' | 'options'): string {
  return naming === 'json' ? field.json : field.key
}

function defined<T extends object>(values: T | undefined): Partial<T> {
  return Object.fromEntries(
    Object.entries(values ?? {}).filter(([, value]) => value !== undefined),
  ) as Partial<T>
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
