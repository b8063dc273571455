import { type Logger, silentLogger } from '@parley/core'
import {
  defaultBehaviour,
  type MockBehaviourPatch,
  type MockConfigProblem,
  type MockProviderConfig,
  patchConfig,
} from './behaviour.js'
import type { MockCredentials } from './provider-apis.js'

/** Options of `startMockProviderServer`. */
export interface MockProviderServerOptions extends MockBehaviourPatch {
  /** Port to listen on; 0 picks a free one. @default 0 */
  readonly port?: number
  /**
   * Address to listen on. The control API under `/__mock/` has no
   * authentication, so keep it on loopback. @default '127.0.0.1'
   */
  readonly host?: string
  /** Twilio account SID it accepts. @default 'ACmock' */
  readonly accountSid?: string
  /** Twilio auth token it accepts. @default 'mock-auth-token' */
  readonly authToken?: string
  /** SendGrid API key it accepts. @default 'mock-api-key' */
  readonly apiKey?: string
  /** Where it logs; one event per call. @default silent */
  readonly logger?: Logger
  /** Requests kept for `requests()`; older ones drop. @default 10000 */
  readonly maxRecordedRequests?: number
  /** Largest request body accepted, in bytes. @default 52428800 */
  readonly maxBodyBytes?: number
}

/** The credentials the mock server accepts unless told otherwise. */
export const MOCK_PROVIDER_CREDENTIALS: MockCredentials = Object.freeze({
  accountSid: 'ACmock',
  authToken: 'mock-auth-token',
  apiKey: 'mock-api-key',
})

/** The options, checked, with their defaults filled in. */
export interface Settings {
  readonly port: number
  readonly host: string
  readonly credentials: MockCredentials
  readonly logger: Logger
  readonly maxRecordedRequests: number
  readonly maxBodyBytes: number
  readonly config: MockProviderConfig
}

/**
 * Checks the options once, at start, and fills in the defaults.
 *
 * @throws TypeError or RangeError naming the option.
 */
export function checkedOptions(options: MockProviderServerOptions): Settings {
  const {
    port = 0,
    host = '127.0.0.1',
    accountSid = MOCK_PROVIDER_CREDENTIALS.accountSid,
    authToken = MOCK_PROVIDER_CREDENTIALS.authToken,
    apiKey = MOCK_PROVIDER_CREDENTIALS.apiKey,
    logger = silentLogger,
    maxRecordedRequests = 10_000,
    maxBodyBytes = 50 * 1024 * 1024,
    ...behaviour
  } = options
  return {
    port: wholeNumber('port', port, 0, 65_535),
    host: text('host', host),
    credentials: {
      accountSid: text('accountSid', accountSid, [':', '/']),
      authToken: text('authToken', authToken),
      apiKey: text('apiKey', apiKey),
    },
    logger,
    maxRecordedRequests: wholeNumber(
      'maxRecordedRequests',
      maxRecordedRequests,
      1,
    ),
    maxBodyBytes: wholeNumber('maxBodyBytes', maxBodyBytes, 1),
    config: initialConfig(behaviour),
  }
}

function initialConfig(patch: MockBehaviourPatch): MockProviderConfig {
  const base = { sms: defaultBehaviour(), email: defaultBehaviour() }
  // One random seed for both families unless a seed is given.
  const start = { ...base, email: { ...base.email, seed: base.sms.seed } }
  const { config, problems } = patchConfig(start, patch, 'options')
  if (problems.length > 0) throw configError(problems)
  return config
}

/** The RangeError listing invalid settings, each by its name. */
export function configError(
  problems: readonly MockConfigProblem[],
): RangeError {
  const list = problems.map((p) => `${p.field} ${p.message}`).join('; ')
  return new RangeError(`mock provider settings: ${list}`)
}

function wholeNumber(
  option: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${option} must be a number (received ${typeof value})`)
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${option} must be a whole number from ${min} to ${max} (received ${value})`,
    )
  }
  return value
}

function text(
  option: string,
  value: unknown,
  forbidden: readonly string[] = [],
): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${option} must be a non-empty string`)
  }
  if (forbidden.some((character) => value.includes(character))) {
    throw new RangeError(
      `${option} must not contain ${forbidden.map((c) => `'${c}'`).join(' or ')}` +
        ` (received ${JSON.stringify(value)})`,
    )
  }
  return value
}
