import { isIP } from 'node:net'
import { type ParleyConfig, resolveConfig } from '@parley/core'
import { type EdgeConfig, readEdgeConfig } from './edge-config.js'
import {
  type ProviderSettings,
  readProviderSettings,
} from './provider-config.js'

/** Log levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Where the server keeps its data. */
export type StorageConfig =
  | {
      readonly kind: 'sqlite'
      readonly filename: string
      readonly synchronous: 'FULL' | 'NORMAL'
    }
  | {
      readonly kind: 'postgres'
      readonly connectionString: string
      /** Most pooled connections (API_DB_POOL_MAX). */
      readonly poolMax: number
      /** The schema, from the URL's `schema` parameter. */
      readonly schema?: string
    }

/** The server's whole configuration, read once from the environment. */
export interface ServerConfig {
  /** The TCP port to listen on (`PORT`); 0 picks a free one. */
  readonly port: number
  /** The address to listen on (`HOST`). */
  readonly host: string
  /** The database (`DATABASE_URL`): a SQLite file or a Postgres URL. */
  readonly storage: StorageConfig
  /** The least severe log lines written (`LOG_LEVEL`). */
  readonly logLevel: LogLevel
  /** Provider entries per family, in priority order (empty: no route). */
  readonly smsProviders: readonly string[]
  /** The email family's entries, as `smsProviders`. */
  readonly emailProviders: readonly string[]
  /** Fault injection, credentials and limits of the providers. */
  readonly providerSettings: ProviderSettings
  /** The largest request body read, in bytes (`API_MAX_BODY_BYTES`). */
  readonly maxBodyBytes: number
  /** Time allowed to receive a request body, in ms (`API_BODY_TIMEOUT_MS`). */
  readonly bodyTimeoutMs: number
  /** How long a graceful shutdown waits, in ms (`API_SHUTDOWN_GRACE_SECS`). */
  readonly shutdownGraceMs: number
  /** Tuning passed to core. */
  readonly core: ParleyConfig
  /** API keys, proxies, webhook signatures and the global breaker. */
  readonly edge: EdgeConfig
}

/** A bad environment variable; the message names it. */
export class ConfigError extends Error {
  /** Always `ConfigError`. */
  override readonly name = 'ConfigError'
  /** The variable to change, such as `PORT`. */
  readonly variable: string

  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.variable = variable
  }
}

type Env = Readonly<Record<string, string | undefined>>

// `mock`, or `mock-<suffix>` for a second mock of the same family (to try
// failover); `twilio` serves SMS and `sendgrid` email.
const PROVIDER_ENTRY: Readonly<Record<string, RegExp>> = {
  API_SMS_PROVIDERS: /^(mock(-[a-z0-9]{1,20})?|twilio)$/,
  API_EMAIL_PROVIDERS: /^(mock(-[a-z0-9]{1,20})?|sendgrid)$/,
}

/**
 * Reads the configuration from environment variables, applying the
 * defaults of docs/operations.md. Throws a {@link ConfigError} naming the
 * first bad variable.
 */
export function loadConfig(env: Env = process.env): ServerConfig {
  const read = new EnvReader(env)
  const smsProviders = read.providers('API_SMS_PROVIDERS')
  const emailProviders = read.providers('API_EMAIL_PROVIDERS')
  const providerSettings = readProviderSettings(
    read,
    smsProviders,
    emailProviders,
  )
  // SendGrid calls fetch their attachments inside the call: the lease must
  // cover both time limits.
  const extraCallMs = providerSettings.sendgrid
    ? providerSettings.attachments.timeoutMs
    : 0
  return {
    port: read.integer('PORT', 8080, 0, 65_535),
    host: readHost(read),
    storage: readStorage(read),
    logLevel: read.oneOf('LOG_LEVEL', 'info', [
      'debug',
      'info',
      'warn',
      'error',
    ]),
    smsProviders,
    emailProviders,
    providerSettings,
    maxBodyBytes: read.integer('API_MAX_BODY_BYTES', 1_048_576, 1, 104_857_600),
    bodyTimeoutMs: read.integer('API_BODY_TIMEOUT_MS', 10_000, 1, 600_000),
    shutdownGraceMs:
      read.integer('API_SHUTDOWN_GRACE_SECS', 15, 0, 3600) * 1000,
    core: checkCoreConfig(readCoreConfig(read), extraCallMs),
    edge: readEdgeConfig(read),
  }
}

// An IP address or a DNS name; anything else would fail only at listen,
// without naming the variable.
function readHost(read: EnvReader): string {
  const host = read.string('HOST', '0.0.0.0')
  const name =
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
  if (isIP(host) !== 0 || name.test(host)) return host
  throw new ConfigError(
    'HOST',
    `must be an IP address or host name, got "${host}"`,
  )
}

function readStorage(read: EnvReader): StorageConfig {
  const url = read.string('DATABASE_URL', './data/parley.db')
  const synchronous = read.oneOf('API_SQLITE_SYNCHRONOUS', 'FULL', [
    'FULL',
    'NORMAL',
  ])
  const poolMax = read.integer('API_DB_POOL_MAX', 10, 1, 1000)
  if (/^postgres(ql)?:\/\//i.test(url)) return readPostgres(url, poolMax)
  // Any other URL (mysql://…) would otherwise become a relative file path.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]
  if (scheme !== undefined && !/^(sqlite|file)$/i.test(scheme)) {
    throw new ConfigError(
      'DATABASE_URL',
      `unsupported scheme "${scheme}"; use a SQLite file path or a postgres:// URL`,
    )
  }
  const filename = url.replace(/^sqlite:(\/\/)?/i, '').replace(/^file:/i, '')
  if (filename === '') {
    throw new ConfigError('DATABASE_URL', 'must name a SQLite file')
  }
  return { kind: 'sqlite', filename, synchronous }
}

// Postgres keeps its catalogs in these; Parley's tables do not belong there.
function isSystemSchema(schema: string): boolean {
  return schema === 'information_schema' || schema.startsWith('pg_')
}

// `?schema=name` picks the schema Parley's tables live in; the rest of the
// URL goes to the driver as it is.
function readPostgres(url: string, poolMax: number): StorageConfig {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ConfigError('DATABASE_URL', 'is not a valid Postgres URL')
  }
  const schemas = parsed.searchParams.getAll('schema')
  if (schemas.length > 1) {
    throw new ConfigError('DATABASE_URL', 'names more than one schema')
  }
  const schema = schemas[0]
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(
      'DATABASE_URL',
      'its schema parameter must be a lower-case SQL identifier',
    )
  }
  if (schema !== undefined && isSystemSchema(schema)) {
    throw new ConfigError(
      'DATABASE_URL',
      `its schema parameter names a system schema (${schema})`,
    )
  }
  parsed.searchParams.delete('schema')
  const connectionString = parsed.toString()
  return schema === undefined
    ? { kind: 'postgres', connectionString, poolMax }
    : { kind: 'postgres', connectionString, poolMax, schema }
}

// Core checks its options again, but names them as options (`leaseMs`):
// check here first what core would refuse, so that the message names the
// variable that set it.
function checkCoreConfig(
  core: ParleyConfig,
  extraCallMs: number,
): ParleyConfig {
  const region = core.defaultRegion ?? 'US'
  try {
    resolveConfig({ defaultRegion: region })
  } catch {
    throw new ConfigError(
      'API_DEFAULT_REGION',
      `must be a two-letter region code such as US, got "${region}"`,
    )
  }
  const { leaseMs = 0, providerTimeoutMs = 0 } = core
  if (leaseMs < providerTimeoutMs + extraCallMs + 1000) {
    const limits =
      extraCallMs > 0
        ? `API_PROVIDER_TIMEOUT_MS + API_ATTACHMENT_TIMEOUT_MS (${providerTimeoutMs + extraCallMs} ms)`
        : `API_PROVIDER_TIMEOUT_MS (${providerTimeoutMs} ms)`
    throw new ConfigError(
      'API_WORKER_CLAIM_TIMEOUT_SECS',
      `must exceed ${limits} by at least one second, got ${leaseMs / 1000} s`,
    )
  }
  const { backoffBaseMs = 0, backoffMaxMs = 0 } = core
  if (backoffMaxMs < backoffBaseMs) {
    throw new ConfigError(
      'API_WORKER_BACKOFF_MAX_MS',
      `must be at least API_WORKER_BACKOFF_BASE_MS (${backoffBaseMs}), got ${backoffMaxMs}`,
    )
  }
  return core
}

function readCoreConfig(read: EnvReader): ParleyConfig {
  return {
    defaultRegion: read.string('API_DEFAULT_REGION', 'US').toUpperCase(),
    maxAttachments: read.integer('API_MAX_ATTACHMENTS', 8, 0, 100),
    snippetLength: read.integer('CONVERSATION_SNIPPET_LENGTH', 64, 1, 1000),
    dispatchConcurrency: read.integer('API_DISPATCH_CONCURRENCY', 16, 1, 1000),
    inboundBatchSize: read.integer('API_WORKER_BATCH_SIZE', 100, 1, 10_000),
    pollIntervalMs: read.integer('API_WORKER_POLL_MS', 200, 10, 60_000),
    leaseMs:
      read.integer('API_WORKER_CLAIM_TIMEOUT_SECS', 60, 2, 86_400) * 1000,
    maxRetries: read.integer('API_WORKER_MAX_RETRIES', 8, 0, 100),
    backoffBaseMs: read.integer(
      'API_WORKER_BACKOFF_BASE_MS',
      1000,
      1,
      3_600_000,
    ),
    backoffMaxMs: read.integer(
      'API_WORKER_BACKOFF_MAX_MS',
      300_000,
      1,
      86_400_000,
    ),
    providerTimeoutMs: read.integer(
      'API_PROVIDER_TIMEOUT_MS',
      10_000,
      1,
      600_000,
    ),
    retryAfterMaxMs:
      read.integer('API_RETRY_AFTER_MAX_SECS', 3600, 0, 86_400) * 1000,
    breakerThreshold: read.integer(
      'API_BREAKER_ERROR_THRESHOLD',
      20,
      1,
      100_000,
    ),
    breakerOpenMs: read.integer('API_BREAKER_OPEN_SECS', 30, 0, 86_400) * 1000,
    idempotencyTtlMs:
      read.integer('API_IDEMPOTENCY_TTL_SECS', 86_400, 1, 2_592_000) * 1000,
    rateLimitPerIpPerMin: read.integer(
      'API_RATE_LIMIT_PER_IP_PER_MIN',
      120,
      1,
      1_000_000_000,
    ),
    rateLimitPerSenderPerMin: read.integer(
      'API_RATE_LIMIT_PER_SENDER_PER_MIN',
      60,
      1,
      1_000_000_000,
    ),
    rateLimitWebhookPerIpPerMin: read.integer(
      'API_RATE_LIMIT_WEBHOOK_PER_IP_PER_MIN',
      6000,
      1,
      1_000_000_000,
    ),
    rateLimitMaxKeys: read.integer(
      'API_RATE_LIMIT_MAX_KEYS',
      100_000,
      1,
      100_000_000,
    ),
    retentionDays: read.integer('API_RETENTION_DAYS', 7, 1, 36_500),
  }
}

/** Reads typed values from the environment; errors name the variable. */
export class EnvReader {
  constructor(private readonly env: Env) {}

  /** The raw value, or undefined when unset or blank. */
  optional(name: string): string | undefined {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.optional(name)?.toLowerCase()
    if (raw === undefined) return fallback
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true
    if (['0', 'false', 'no', 'off'].includes(raw)) return false
    throw new ConfigError(name, `must be true or false, got "${raw}"`)
  }

  string(name: string, fallback: string): string {
    const value = this.env[name]
    return value === undefined || value.trim() === '' ? fallback : value.trim()
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name]?.trim()
    if (raw === undefined || raw === '') return fallback
    if (!/^[0-9]+$/.test(raw)) {
      throw new ConfigError(name, `must be a whole number, got "${raw}"`)
    }
    const value = Number(raw)
    if (value < min || value > max) {
      throw new ConfigError(
        name,
        `must be between ${min} and ${max}, got ${raw}`,
      )
    }
    return value
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.string(name, fallback)
    const match = allowed.find(
      (item) => item.toLowerCase() === raw.toLowerCase(),
    )
    if (match === undefined) {
      throw new ConfigError(
        name,
        `must be one of ${allowed.join(', ')}, got "${raw}"`,
      )
    }
    return match
  }

  // Unset means the default (`mock`); set but empty, or `none`, means the
  // family has no provider and its sends are refused with no_route.
  providers(name: string): readonly string[] {
    const raw = this.env[name]
    if (raw === undefined) return ['mock']
    const names = raw
      .split(',')
      .map((item) => item.trim().toLowerCase())
      .filter((item) => item !== '')
    // `none` beside a provider contradicts it: refused rather than dropped.
    if (names.includes('none')) {
      if (names.length === 1) return []
      throw new ConfigError(
        name,
        `"none" must be alone in the list, got "${raw}"`,
      )
    }
    const pattern = PROVIDER_ENTRY[name]
    for (const item of names) {
      if (pattern && !pattern.test(item)) {
        const known = name === 'API_SMS_PROVIDERS' ? 'twilio' : 'sendgrid'
        throw new ConfigError(
          name,
          `unknown provider "${item}"; use mock, mock-<suffix> or ${known}`,
        )
      }
    }
    if (new Set(names).size !== names.length) {
      throw new ConfigError(name, 'lists a provider twice')
    }
    return names
  }
}
