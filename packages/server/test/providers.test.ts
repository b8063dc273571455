import { describe, expect, it } from 'vitest'
import type { LogFields, Logger } from '@parley/core'
import { ConfigError, loadConfig } from '../src/config.js'
import { buildProviders } from '../src/providers.js'

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = []
  const ignore = (_event: string, _fields?: LogFields) => undefined
  return {
    warnings,
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (event) => warnings.push(event),
  }
}

const SENDGRID = {
  API_EMAIL_PROVIDERS: 'sendgrid',
  SENDGRID_BASE_URL: 'http://127.0.0.1:2',
  SENDGRID_API_KEY: 'SG.test',
}

describe('buildProviders', () => {
  it('warns at start when SendGrid has no default subject', () => {
    const logger = recordingLogger()

    buildProviders(loadConfig(SENDGRID), logger)

    expect(logger.warnings).toContain(
      'providers.sendgrid_without_default_subject',
    )
  })

  it('does not warn about the subject when a default is set', () => {
    const logger = recordingLogger()
    const env = { ...SENDGRID, SENDGRID_DEFAULT_SUBJECT: 'Hello' }

    buildProviders(loadConfig(env), logger)

    expect(logger.warnings).not.toContain(
      'providers.sendgrid_without_default_subject',
    )
  })

  it('warns loudly when only mock providers are configured', () => {
    const logger = recordingLogger()

    buildProviders(loadConfig({}), logger)

    expect(logger.warnings).toContain('providers.mock_only')
  })

  const TWILIO = {
    API_SMS_PROVIDERS: 'twilio',
    TWILIO_BASE_URL: 'http://127.0.0.1:2',
    TWILIO_ACCOUNT_SID: 'AC1',
    TWILIO_AUTH_TOKEN: 'token',
  }

  // Each value passes loadConfig and is refused by the adapter itself.
  it.each([
    [
      { ...TWILIO, TWILIO_BASE_URL: 'http://127.0.0.1:6000' },
      'TWILIO_BASE_URL: uses port 6000, which fetch refuses to call, as browsers do (received http://127.0.0.1:6000/)',
    ],
    [
      { ...TWILIO, TWILIO_BASE_URL: 'http://user:secret@127.0.0.1:8080' },
      'TWILIO_BASE_URL: must not carry a query, fragment or credentials (received http://127.0.0.1:8080/…)',
    ],
    [
      { ...TWILIO, TWILIO_ACCOUNT_SID: 'AC:1' },
      "TWILIO_ACCOUNT_SID: must not contain ':'",
    ],
    [
      { ...SENDGRID, SENDGRID_BASE_URL: 'https://127.0.0.1:10080/v' },
      'SENDGRID_BASE_URL: uses port 10080, which fetch refuses to call, as browsers do (received https://127.0.0.1:10080/v)',
    ],
    [
      { ...SENDGRID, SENDGRID_BASE_URL: 'http://127.0.0.1:8080/?region=eu' },
      'SENDGRID_BASE_URL: must not carry a query, fragment or credentials (received http://127.0.0.1:8080/…)',
    ],
  ])(
    'names the variable behind an option the adapter refuses: %j',
    (env, message) => {
      const config = loadConfig(env)

      let error: unknown
      try {
        buildProviders(config, recordingLogger())
      } catch (caught) {
        error = caught
      }

      expect(error).toBeInstanceOf(ConfigError)
      expect((error as Error).message.slice(0, message.length)).toBe(message)
      expect((error as Error).message).not.toContain('secret')
    },
  )
})
