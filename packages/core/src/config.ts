import { isKnownRegion } from './messages/phone.js'
import { checkKnownOptions } from './util/known-options.js'

/** Tuning of a Parley instance. Every field is optional. */
export interface ParleyConfig {
  /**
   * Region (ISO 3166 alpha-2) for phone numbers written without `+`.
   * @default 'US'
   */
  defaultRegion?: string
  /** Most attachments one message may carry, 0 to 100. @default 8 */
  maxAttachments?: number
  /** Length of a message's snippet in characters, 1 to 1000. @default 64 */
  snippetLength?: number
  /** Provider calls the dispatch worker runs at once, 1 to 1000. @default 16 */
  dispatchConcurrency?: number
  /** Inbound events claimed per batch, 1 to 10000. @default 100 */
  inboundBatchSize?: number
  /** How often idle workers look for work, in ms, 10 to 60000. @default 200 */
  pollIntervalMs?: number
  /**
   * How long a claimed job or event stays claimed (the lease), in ms; must
   * exceed `providerTimeoutMs` by at least a second.
   * @default 60000
   */
  leaseMs?: number
  /** Retries after the first attempt, 0 to 100. @default 8 */
  maxRetries?: number
  /** First backoff ceiling in ms, 1 to 3600000. @default 1000 */
  backoffBaseMs?: number
  /** Largest backoff in ms, at least `backoffBaseMs`. @default 300000 */
  backoffMaxMs?: number
  /** Time limit of one provider call in ms, 1 to 600000. @default 10000 */
  providerTimeoutMs?: number
  /** Cap on a provider's `Retry-After`, in ms. @default 3600000 */
  retryAfterMaxMs?: number
  /** Most writes one group commit holds, 1 to 10000. @default 512 */
  maxWriteBatch?: number
  /**
   * Consecutive transient failures that open a provider's breaker,
   * 1 to 100000.
   * @default 20
   */
  breakerThreshold?: number
  /** How long a provider's breaker stays open, in ms, 0 to 86400000. @default 30000 */
  breakerOpenMs?: number
  /**
   * How long an idempotency key is kept, in ms, 1000 to 2592000000
   * (30 days).
   * @default 86400000
   */
  idempotencyTtlMs?: number
  /** Sends per minute per normalized sender, 1 to 10^9. @default 60 */
  rateLimitPerSenderPerMin?: number
  /** API requests per minute per client IP, 1 to 10^9. @default 120 */
  rateLimitPerIpPerMin?: number
  /** Webhook requests per minute per client IP, 1 to 10^9. @default 6000 */
  rateLimitWebhookPerIpPerMin?: number
  /**
   * Most buckets the in-memory rate-limit store holds (all limits
   * together), 1 to 10^8.
   * @default 100000
   */
  rateLimitMaxKeys?: number
  /**
   * How long finished jobs, processed inbound events (and with them the
   * webhook dedupe window), expired idempotency keys, idle rate-limit
   * buckets and unmatched delivery reports are kept before the retention
   * worker deletes them, in days, 1 to 36500. Messages, conversations and
   * dead letters are kept.
   * @default 7
   */
  retentionDays?: number
  /** Most rows one retention statement deletes, 1 to 100000. @default 500 */
  retentionBatchSize?: number
  /**
   * How often the retention worker looks for rows to prune once it found
   * none, in ms, 10 to 86400000.
   * @default 60000
   */
  retentionIntervalMs?: number
}

/** The configuration with every default filled in, validated and frozen. */
export type ResolvedConfig = Readonly<Required<ParleyConfig>>

const DEFAULTS: ResolvedConfig = {
  defaultRegion: 'US',
  maxAttachments: 8,
  snippetLength: 64,
  dispatchConcurrency: 16,
  inboundBatchSize: 100,
  pollIntervalMs: 200,
  leaseMs: 60_000,
  maxRetries: 8,
  backoffBaseMs: 1000,
  backoffMaxMs: 300_000,
  providerTimeoutMs: 10_000,
  retryAfterMaxMs: 3_600_000,
  maxWriteBatch: 512,
  breakerThreshold: 20,
  breakerOpenMs: 30_000,
  idempotencyTtlMs: 86_400_000,
  rateLimitPerSenderPerMin: 60,
  rateLimitPerIpPerMin: 120,
  rateLimitWebhookPerIpPerMin: 6000,
  rateLimitMaxKeys: 100_000,
  retentionDays: 7,
  retentionBatchSize: 500,
  retentionIntervalMs: 60_000,
}

type IntegerOption = Exclude<keyof ParleyConfig, 'defaultRegion'>

const BOUNDS: Readonly<Record<IntegerOption, readonly [number, number]>> = {
  maxAttachments: [0, 100],
  snippetLength: [1, 1000],
  dispatchConcurrency: [1, 1000],
  inboundBatchSize: [1, 10_000],
  pollIntervalMs: [10, 60_000],
  leaseMs: [1000, 86_400_000],
  maxRetries: [0, 100],
  backoffBaseMs: [1, 3_600_000],
  backoffMaxMs: [1, 86_400_000],
  providerTimeoutMs: [1, 600_000],
  retryAfterMaxMs: [0, 86_400_000],
  maxWriteBatch: [1, 10_000],
  breakerThreshold: [1, 100_000],
  breakerOpenMs: [0, 86_400_000],
  idempotencyTtlMs: [1000, 2_592_000_000],
  rateLimitPerSenderPerMin: [1, 1_000_000_000],
  rateLimitPerIpPerMin: [1, 1_000_000_000],
  rateLimitWebhookPerIpPerMin: [1, 1_000_000_000],
  rateLimitMaxKeys: [1, 100_000_000],
  retentionDays: [1, 36_500],
  retentionBatchSize: [1, 100_000],
  retentionIntervalMs: [10, 86_400_000],
}

/**
 * Fills in defaults and checks every option once. A bad value throws a
 * `RangeError` or `TypeError` naming the option and the value received.
 */
export function resolveConfig(config: ParleyConfig = {}): ResolvedConfig {
  checkKnownOptions('config', config, Object.keys(DEFAULTS))
  const resolved = { ...DEFAULTS, ...withoutUndefined(config) }
  checkRegion(resolved.defaultRegion)
  for (const [name, [min, max]] of Object.entries(BOUNDS)) {
    checkInteger(name, resolved[name as IntegerOption], min, max)
  }
  checkRelations(resolved)
  return Object.freeze(resolved)
}

function withoutUndefined(config: ParleyConfig): ParleyConfig {
  return Object.fromEntries(
    Object.entries(config).filter(([, value]) => value !== undefined),
  )
}

function checkRegion(region: unknown): void {
  if (typeof region !== 'string' || !isKnownRegion(region)) {
    throw new RangeError(
      `config.defaultRegion must be a known two-letter region such as US, got ${String(region)}`,
    )
  }
}

function checkInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(
      `config.${name} must be a whole number, got ${String(value)}`,
    )
  }
  if (value < min || value > max) {
    throw new RangeError(
      `config.${name} must be between ${min} and ${max}, got ${value}`,
    )
  }
}

function checkRelations(config: ResolvedConfig): void {
  if (config.backoffMaxMs < config.backoffBaseMs) {
    throw new RangeError(
      `config.backoffMaxMs must be at least backoffBaseMs (${config.backoffBaseMs}), got ${config.backoffMaxMs}`,
    )
  }
  // A lease shorter than a provider call would let a second worker claim a
  // job while its first call still runs, and send the message twice.
  if (config.leaseMs < config.providerTimeoutMs + 1000) {
    throw new RangeError(
      `config.leaseMs must exceed providerTimeoutMs (${config.providerTimeoutMs}) by at least 1000, got ${config.leaseMs}`,
    )
  }
}
