import { describe, expect, it } from 'vitest'
import type { LogFields, Logger } from '@parley/core'
import { loadConfig } from '../src/config.js'
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
  SENDGRID_BASE_URL: 'http://127.0.0.1:9',
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
})
