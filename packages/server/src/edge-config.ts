import type { KeyObject } from 'node:crypto'
import { ConfigError, type EnvReader } from './config.js'
import { parseTrustedProxies, type TrustedProxies } from './http/client-ip.js'
import {
  type ApiKey,
  parseApiKeys,
  parsePublicBaseUrl,
  parseSendGridPublicKey,
  standardWebhookKey,
} from './http/security/signatures.js'

/** Where rate-limit buckets live (API_RATE_LIMIT_STORE). */
export type RateLimitStoreKind = 'memory' | 'database'

/** Who may call the API, and how webhooks prove where they come from. */
export interface EdgeConfig {
  /**
   * Where the rate limits keep their buckets: `memory` (per process) or
   * `database` (shared by every instance on the database).
   */
  readonly rateLimitStore: RateLimitStoreKind
  /** Bearer keys (API_KEYS); empty: the API is open. */
  readonly apiKeys: readonly ApiKey[]
  /** Proxies whose X-Forwarded-For is believed (API_TRUSTED_PROXIES). */
  readonly trustedProxies: TrustedProxies
  /** The URL providers call (API_PUBLIC_URL), for signatures. */
  readonly publicUrl: string | undefined
  /** Twilio auth token that signs SMS webhooks (WEBHOOK_SMS_AUTH_TOKEN). */
  readonly smsWebhookToken: string | undefined
  /** Standard Webhooks secret of email webhooks (WEBHOOK_EMAIL_SECRET). */
  readonly emailWebhookSecret: string | undefined
  /** SendGrid's event webhook key (WEBHOOK_SENDGRID_PUBLIC_KEY). */
  readonly sendgridPublicKey: KeyObject | undefined
  /** The global breaker (API_GLOBAL_BREAKER_*). */
  readonly globalBreaker: {
    readonly threshold: number
    readonly openMs: number
  }
}

/** Reads the edge's variables; a bad value names its variable. */
export function readEdgeConfig(read: EnvReader): EdgeConfig {
  return {
    rateLimitStore: read.oneOf<RateLimitStoreKind>(
      'API_RATE_LIMIT_STORE',
      'memory',
      ['memory', 'database'],
    ),
    apiKeys: parsed(read, 'API_KEYS', parseApiKeys) ?? [],
    trustedProxies:
      parsed(read, 'API_TRUSTED_PROXIES', parseTrustedProxies) ?? [],
    publicUrl: parsed(read, 'API_PUBLIC_URL', parsePublicBaseUrl),
    smsWebhookToken: read.optional('WEBHOOK_SMS_AUTH_TOKEN'),
    emailWebhookSecret: parsed(read, 'WEBHOOK_EMAIL_SECRET', (text) => {
      standardWebhookKey(text)
      return text
    }),
    sendgridPublicKey: parsed(
      read,
      'WEBHOOK_SENDGRID_PUBLIC_KEY',
      parseSendGridPublicKey,
    ),
    globalBreaker: {
      threshold: read.integer('API_GLOBAL_BREAKER_THRESHOLD', 20, 1, 100_000),
      openMs:
        read.integer('API_GLOBAL_BREAKER_OPEN_SECS', 10, 0, 86_400) * 1000,
    },
  }
}

// Runs a parser on a set variable; its error becomes a ConfigError that
// names the variable (parsers never quote secrets in their messages).
function parsed<T>(
  read: EnvReader,
  name: string,
  parse: (text: string) => T,
): T | undefined {
  const text = read.optional(name)
  if (text === undefined) return undefined
  try {
    return parse(text)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new ConfigError(name, reason)
  }
}
