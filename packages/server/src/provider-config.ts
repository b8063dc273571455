import type { FaultRates } from '@parley/core'
import { ConfigError, type EnvReader } from './config.js'

/** Fault injection of the mock providers of one family. */
export interface MockFamilySettings {
  readonly faults: FaultRates
  /** Undefined: a random seed, logged at start. */
  readonly seed: number | undefined
}

/** Where and how the Twilio-style adapter calls. */
export interface TwilioSettings {
  readonly baseUrl: string
  readonly accountSid: string
  readonly authToken: string
}

/** Where and how the SendGrid-style adapter calls. */
export interface SendGridSettings {
  readonly baseUrl: string
  readonly apiKey: string
  readonly defaultSubject: string | undefined
}

/** Limits on fetching email attachments for SendGrid. */
export interface AttachmentSettings {
  readonly maxBytes: number
  readonly timeoutMs: number
  readonly allowPrivate: boolean
}

/** Everything the providers are built from. */
export interface ProviderSettings {
  readonly mock: {
    readonly sms: MockFamilySettings
    readonly email: MockFamilySettings
  }
  /** Present when `twilio` is listed in API_SMS_PROVIDERS. */
  readonly twilio: TwilioSettings | undefined
  /** Present when `sendgrid` is listed in API_EMAIL_PROVIDERS. */
  readonly sendgrid: SendGridSettings | undefined
  readonly attachments: AttachmentSettings
  /** The URL providers call back (API_PUBLIC_URL), without a trailing slash. */
  readonly publicUrl: string | undefined
}

/** Reads the provider variables; credentials only for listed providers. */
export function readProviderSettings(
  read: EnvReader,
  smsProviders: readonly string[],
  emailProviders: readonly string[],
): ProviderSettings {
  return {
    mock: {
      sms: readMockFamily(read, 'SMS'),
      email: readMockFamily(read, 'EMAIL'),
    },
    twilio: smsProviders.includes('twilio') ? readTwilio(read) : undefined,
    sendgrid: emailProviders.includes('sendgrid')
      ? readSendGrid(read)
      : undefined,
    attachments: {
      maxBytes: read.integer(
        'API_ATTACHMENT_MAX_BYTES',
        10_485_760,
        1,
        104_857_600,
      ),
      timeoutMs: read.integer('API_ATTACHMENT_TIMEOUT_MS', 10_000, 1, 600_000),
      allowPrivate: read.boolean('API_ATTACHMENT_ALLOW_PRIVATE', false),
    },
    publicUrl:
      read.optional('API_PUBLIC_URL') === undefined
        ? undefined
        : readUrl(read, 'API_PUBLIC_URL', ''),
  }
}

// A family's own variable (API_PROVIDER_SMS_ERROR_PCT) wins over the
// shared one (API_PROVIDER_ERROR_PCT).
function readMockFamily(
  read: EnvReader,
  family: 'SMS' | 'EMAIL',
): MockFamilySettings {
  const pct = (kind: string) => {
    const own = `API_PROVIDER_${family}_${kind}_PCT`
    const shared = `API_PROVIDER_${kind}_PCT`
    const name = read.optional(own) === undefined ? shared : own
    return { name, value: read.integer(name, 0, 0, 100) }
  }
  const timeout = pct('TIMEOUT')
  const error = pct('ERROR')
  const rateLimit = pct('RATELIMIT')
  if (timeout.value + error.value + rateLimit.value > 100) {
    throw new ConfigError(
      [timeout.name, error.name, rateLimit.name].join(', '),
      `the ${family} failure percentages add up to more than 100`,
    )
  }
  const seedName =
    read.optional(`API_PROVIDER_${family}_SEED`) === undefined
      ? 'API_PROVIDER_SEED'
      : `API_PROVIDER_${family}_SEED`
  const seed = read.optional(seedName)
  return {
    faults: {
      timeoutPct: timeout.value,
      errorPct: error.value,
      rateLimitPct: rateLimit.value,
    },
    seed:
      seed === undefined
        ? undefined
        : read.integer(seedName, 0, 0, 0xffff_ffff),
  }
}

function readTwilio(read: EnvReader): TwilioSettings {
  return {
    baseUrl: readUrl(read, 'TWILIO_BASE_URL', 'https://api.twilio.com'),
    accountSid: required(read, 'TWILIO_ACCOUNT_SID', 'twilio'),
    authToken: required(read, 'TWILIO_AUTH_TOKEN', 'twilio'),
  }
}

function readSendGrid(read: EnvReader): SendGridSettings {
  return {
    baseUrl: readUrl(read, 'SENDGRID_BASE_URL', 'https://api.sendgrid.com'),
    apiKey: required(read, 'SENDGRID_API_KEY', 'sendgrid'),
    defaultSubject: read.optional('SENDGRID_DEFAULT_SUBJECT'),
  }
}

function required(read: EnvReader, name: string, provider: string): string {
  const value = read.optional(name)
  if (value === undefined) {
    throw new ConfigError(name, `is required when ${provider} is a provider`)
  }
  return value
}

function readUrl(read: EnvReader, name: string, fallback: string): string {
  const value = read.string(name, fallback)
  try {
    const url = new URL(value)
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      return value.replace(/\/+$/, '')
    }
  } catch {
    // reported below
  }
  throw new ConfigError(name, `must be an http(s) URL, got "${value}"`)
}
