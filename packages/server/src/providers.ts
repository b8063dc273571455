import {
  createMockProvider,
  createSendGridProvider,
  createTwilioProvider,
  type Logger,
  MockProvider,
  type Provider,
} from '@parley/core'
import { attachmentFetch } from './attachment-fetch.js'
import { ConfigError, type ServerConfig } from './config.js'

/** The providers a server runs, and which of them are mocks. */
export interface BuiltProviders {
  /** Every provider, each family in priority order. */
  readonly providers: readonly Provider[]
  /** The mock ones, whose settings the API can change live. */
  readonly mocks: readonly MockProvider[]
}

/**
 * Builds the providers the configuration lists, and warns loudly when
 * nothing will really be delivered or a family has no route.
 */
export function buildProviders(
  config: ServerConfig,
  logger: Logger,
): BuiltProviders {
  const sms = config.smsProviders.map((entry) => buildSms(entry, config))
  const email = config.emailProviders.map((entry) =>
    buildEmail(entry, config, logger),
  )
  const providers = [...sms, ...email]
  const mocks = providers.filter(
    (provider): provider is MockProvider => provider instanceof MockProvider,
  )
  warnAboutRoutes(providers, mocks, logger)
  return { providers, mocks }
}

function buildSms(entry: string, config: ServerConfig): Provider {
  const twilio = config.providerSettings.twilio
  if (entry === 'twilio' && twilio) {
    const publicUrl = config.providerSettings.publicUrl
    return byVariable(TWILIO_VARIABLES, () =>
      createTwilioProvider({
        baseUrl: twilio.baseUrl,
        accountSid: twilio.accountSid,
        authToken: twilio.authToken,
        statusCallbackUrl: publicUrl && `${publicUrl}/api/webhooks/sms/status`,
      }),
    )
  }
  return buildMock('sms', entry, config)
}

function buildEmail(
  entry: string,
  config: ServerConfig,
  logger: Logger,
): Provider {
  const sendgrid = config.providerSettings.sendgrid
  if (entry === 'sendgrid' && sendgrid) {
    // SendGrid refuses mail without a subject; say so now rather than at
    // the first such email, which fails for good when it is dispatched.
    if (sendgrid.defaultSubject === undefined) {
      logger.warn('providers.sendgrid_without_default_subject', {
        message:
          'SENDGRID_DEFAULT_SUBJECT is not set: emails sent without a subject will fail',
      })
    }
    const attachments = config.providerSettings.attachments
    return byVariable(SENDGRID_VARIABLES, () =>
      createSendGridProvider({
        baseUrl: sendgrid.baseUrl,
        apiKey: sendgrid.apiKey,
        defaultSubject: sendgrid.defaultSubject,
        attachmentMaxBytes: attachments.maxBytes,
        attachmentTimeoutMs: attachments.timeoutMs,
        allowPrivateAttachmentHosts: attachments.allowPrivate,
        attachmentFetch: attachmentFetch(attachments),
      }),
    )
  }
  return buildMock('email', entry, config)
}

// The variable behind each adapter option the server sets.
const TWILIO_VARIABLES: Readonly<Record<string, string>> = {
  baseUrl: 'TWILIO_BASE_URL',
  accountSid: 'TWILIO_ACCOUNT_SID',
  authToken: 'TWILIO_AUTH_TOKEN',
  statusCallbackUrl: 'API_PUBLIC_URL',
}
const SENDGRID_VARIABLES: Readonly<Record<string, string>> = {
  baseUrl: 'SENDGRID_BASE_URL',
  apiKey: 'SENDGRID_API_KEY',
  defaultSubject: 'SENDGRID_DEFAULT_SUBJECT',
  attachmentMaxBytes: 'API_ATTACHMENT_MAX_BYTES',
  attachmentTimeoutMs: 'API_ATTACHMENT_TIMEOUT_MS',
}

/**
 * Builds an adapter; an option it refuses (its message starts with the
 * option's name) is reported by the variable that set it, as the rest of
 * the configuration is.
 */
function byVariable<T>(
  variables: Readonly<Record<string, string>>,
  build: () => T,
): T {
  try {
    return build()
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError))
      throw error
    const [option = '', ...rest] = error.message.split(' ')
    const variable = variables[option]
    if (variable === undefined) throw error
    throw new ConfigError(variable, rest.join(' '))
  }
}

function buildMock(
  family: 'sms' | 'email',
  entry: string,
  config: ServerConfig,
): MockProvider {
  const settings = config.providerSettings.mock[family]
  return createMockProvider({
    family,
    // `mock` -> mock-sms, `mock-b` -> mock-sms-b
    name: `mock-${family}${entry.slice('mock'.length)}`,
    faults: settings.faults,
    seed: settings.seed,
  })
}

function warnAboutRoutes(
  providers: readonly Provider[],
  mocks: readonly MockProvider[],
  logger: Logger,
): void {
  if (providers.length > 0 && mocks.length === providers.length) {
    logger.warn('providers.mock_only', {
      message:
        'only mock providers are configured: NOTHING IS REALLY DELIVERED',
      providers: providers.map((provider) => provider.name),
    })
  }
  for (const mock of mocks) {
    logger.info('providers.mock_settings', {
      provider: mock.name,
      ...mock.settings(),
    })
  }
  for (const family of ['sms', 'email'] as const) {
    if (!providers.some((provider) => provider.family === family)) {
      logger.warn('providers.family_without_route', {
        family,
        message: `no ${family} provider: such sends are refused with no_route`,
      })
    }
  }
}
