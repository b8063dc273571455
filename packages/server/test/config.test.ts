import { ConfigError, loadConfig } from '@parley/server'
import { describe, expect, it } from 'vitest'

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`)
}

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    expect(loadConfig({})).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      storage: {
        kind: 'sqlite',
        filename: './data/parley.db',
        synchronous: 'FULL',
      },
      logLevel: 'info',
      smsProviders: ['mock'],
      emailProviders: ['mock'],
      maxBodyBytes: 1_048_576,
      bodyTimeoutMs: 10_000,
      shutdownGraceMs: 15_000,
      core: {
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
        retentionDays: 7,
      },
    })
  })

  it('reads each variable, trimming blanks and converting seconds to ms', () => {
    const config = loadConfig({
      PORT: ' 9090 ',
      HOST: '127.0.0.1',
      DATABASE_URL: '/var/lib/parley/p.db',
      API_SQLITE_SYNCHRONOUS: 'normal',
      LOG_LEVEL: 'WARN',
      API_MAX_BODY_BYTES: '2048',
      API_BODY_TIMEOUT_MS: '500',
      API_SHUTDOWN_GRACE_SECS: '3',
      API_DEFAULT_REGION: 'GB',
      API_MAX_ATTACHMENTS: '2',
      CONVERSATION_SNIPPET_LENGTH: '10',
      API_DISPATCH_CONCURRENCY: '4',
      API_WORKER_BATCH_SIZE: '7',
      API_WORKER_POLL_MS: '50',
      API_WORKER_CLAIM_TIMEOUT_SECS: '30',
      API_WORKER_MAX_RETRIES: '3',
      API_WORKER_BACKOFF_BASE_MS: '10',
      API_WORKER_BACKOFF_MAX_MS: '20',
      API_PROVIDER_TIMEOUT_MS: '2000',
      API_RETRY_AFTER_MAX_SECS: '60',
      API_RETENTION_DAYS: '30',
    })
    expect(config).toMatchObject({
      port: 9090,
      host: '127.0.0.1',
      storage: { filename: '/var/lib/parley/p.db', synchronous: 'NORMAL' },
      logLevel: 'warn',
      maxBodyBytes: 2048,
      bodyTimeoutMs: 500,
      shutdownGraceMs: 3000,
      core: {
        defaultRegion: 'GB',
        maxAttachments: 2,
        snippetLength: 10,
        dispatchConcurrency: 4,
        inboundBatchSize: 7,
        pollIntervalMs: 50,
        leaseMs: 30_000,
        maxRetries: 3,
        backoffBaseMs: 10,
        backoffMaxMs: 20,
        providerTimeoutMs: 2000,
        retryAfterMaxMs: 60_000,
        retentionDays: 30,
      },
    })
  })

  it('reads a blank value as unset', () => {
    expect(loadConfig({ PORT: '', LOG_LEVEL: '  ' })).toMatchObject({
      port: 8080,
      logLevel: 'info',
    })
  })

  it('accepts PORT=0 (any free port) and the bounds of each range', () => {
    expect(loadConfig({ PORT: '0' }).port).toBe(0)
    expect(loadConfig({ PORT: '65535' }).port).toBe(65_535)
    expect(loadConfig({ API_SHUTDOWN_GRACE_SECS: '0' }).shutdownGraceMs).toBe(0)
  })

  it.each([
    ['sqlite:///tmp/p.db', '/tmp/p.db'],
    ['sqlite:data/p.db', 'data/p.db'],
    ['file:data/p.db', 'data/p.db'],
    ['relative.db', 'relative.db'],
  ])('reads DATABASE_URL %s as the SQLite file %s', (url, filename) => {
    expect(loadConfig({ DATABASE_URL: url }).storage).toMatchObject({
      kind: 'sqlite',
      filename,
    })
  })

  it.each(['postgres://u@db.local/parley', 'postgresql://db.local:6543/p'])(
    'reads DATABASE_URL %s as Postgres, with API_DB_POOL_MAX',
    (url) => {
      expect(
        loadConfig({ DATABASE_URL: url, API_DB_POOL_MAX: '25' }).storage,
      ).toEqual({ kind: 'postgres', connectionString: url, poolMax: 25 })
    },
  )

  it.each([
    ['', []],
    ['none', []],
    [' NONE ', []],
    ['mock', ['mock']],
    [' Mock ', ['mock']],
    ['none,', []],
    ['mock,,mock-b', ['mock', 'mock-b']],
  ])('reads API_SMS_PROVIDERS=%j as %j', (value, providers) => {
    expect(loadConfig({ API_SMS_PROVIDERS: value }).smsProviders).toEqual(
      providers,
    )
    expect(loadConfig({ API_EMAIL_PROVIDERS: value }).emailProviders).toEqual(
      providers,
    )
  })

  it.each([
    'none,mock',
    'NONE,mock',
    'mock, None',
    'none,none',
    'mock,none,mock-b',
  ])(
    'refuses API_SMS_PROVIDERS and API_EMAIL_PROVIDERS=%j: none must be alone',
    (value) => {
      for (const name of ['API_SMS_PROVIDERS', 'API_EMAIL_PROVIDERS']) {
        const error = configError({ [name]: value })
        expect(error.variable).toBe(name)
        expect(error.message).toMatch(
          /^API_\w+_PROVIDERS: "none" must be alone/,
        )
      }
    },
  )

  it.each([
    ['a query', 'https://a.example/?x=1'],
    ['an empty query', 'https://a.example?'],
    ['an empty query after a path', 'https://a.example/base/?'],
    ['a fragment', 'https://a.example/#top'],
    ['an empty fragment', 'https://a.example#'],
    ['credentials', 'https://user:s3cret@a.example/'],
    ['a user name', 'https://user@a.example'],
    ['an empty userinfo', 'https://@a.example'],
    ['an empty user and password', 'https://:@a.example/base'],
    ['an empty userinfo after backslashes', 'https:\\\\@a.example'],
    ['not a URL', 'hooks.example.com'],
    ['another scheme', 'ftp://a.example/'],
  ])('refuses API_PUBLIC_URL with %s (%s)', (_, value) => {
    const error = configError({ API_PUBLIC_URL: value })
    expect(error.variable).toBe('API_PUBLIC_URL')
    expect(error.message).not.toContain('s3cret')
  })

  it.each([
    ['https://a.example', 'https://a.example'],
    ['https://a.example/base/', 'https://a.example/base'],
    ['https://a.example/p@th', 'https://a.example/p@th'],
    ['http://a.example:8080/x', 'http://a.example:8080/x'],
  ])('reads API_PUBLIC_URL=%j as %j', (value, base) => {
    expect(loadConfig({ API_PUBLIC_URL: value }).edge.publicUrl).toBe(base)
  })

  it.each([
    ['PORT', 'abc'],
    ['PORT', '-1'],
    ['PORT', '1.5'],
    ['PORT', '65536'],
    ['PORT', '0x50'],
    ['DATABASE_URL', 'mysql://127.0.0.1/parley'],
    ['DATABASE_URL', 'sqlite:'],
    ['DATABASE_URL', 'postgres://127.0.0.1/parley?schema=a&schema=b'],
    ['DATABASE_URL', 'postgres://127.0.0.1/parley?schema=information_schema'],
    ['DATABASE_URL', 'postgres://127.0.0.1/parley?schema=pg_catalog'],
    ['DATABASE_URL', 'postgres://127.0.0.1/parley?schema=pg_toast'],
    ['DATABASE_URL', 'postgres://127.0.0.1/parley?schema=Tenant'],
    ['API_SQLITE_SYNCHRONOUS', 'OFF'],
    ['LOG_LEVEL', 'trace'],
    ['API_SMS_PROVIDERS', 'carrier-pigeon'],
    ['API_SMS_PROVIDERS', 'mock,mock'],
    ['API_EMAIL_PROVIDERS', 'owl'],
    ['API_MAX_BODY_BYTES', '-5'],
    ['API_MAX_BODY_BYTES', '0'],
    ['API_MAX_BODY_BYTES', '1MB'],
    ['API_BODY_TIMEOUT_MS', '0'],
    ['API_BODY_TIMEOUT_MS', 'soon'],
    ['API_SHUTDOWN_GRACE_SECS', '-1'],
    ['API_SHUTDOWN_GRACE_SECS', '3601'],
    ['API_DEFAULT_REGION', 'ZZ'],
    ['API_DEFAULT_REGION', 'USA'],
    ['API_MAX_ATTACHMENTS', '101'],
    ['CONVERSATION_SNIPPET_LENGTH', '0'],
    ['API_DISPATCH_CONCURRENCY', '0'],
    ['API_WORKER_BATCH_SIZE', '0'],
    ['API_WORKER_POLL_MS', '5'],
    ['API_WORKER_CLAIM_TIMEOUT_SECS', '1'],
    ['API_WORKER_CLAIM_TIMEOUT_SECS', '5'],
    ['API_WORKER_MAX_RETRIES', '-1'],
    ['API_WORKER_BACKOFF_BASE_MS', '0'],
    ['API_WORKER_BACKOFF_MAX_MS', '10'],
    ['API_PROVIDER_TIMEOUT_MS', '0'],
    ['API_RETRY_AFTER_MAX_SECS', 'forever'],
    ['API_RETENTION_DAYS', '0'],
    ['API_RETENTION_DAYS', '36501'],
    ['API_RETENTION_DAYS', '7d'],
  ])('refuses %s=%j with an error naming the variable', (name, value) => {
    const error = configError({ [name]: value })
    expect(error.variable).toBe(name)
    expect(error.message).toContain(name)
    expect(error.name).toBe('ConfigError')
  })

  it('names both storage choices when it refuses a scheme', () => {
    const error = configError({ DATABASE_URL: 'mysql://127.0.0.1/parley' })
    expect(error.message).toContain('SQLite file path')
    expect(error.message).toContain('postgres://')
  })

  it('shows the value it refused', () => {
    expect(configError({ PORT: 'abc' }).message).toContain('abc')
    expect(configError({ API_MAX_BODY_BYTES: '-5' }).message).toContain('-5')
  })

  it('checks the lease against the provider timeout it must outlast', () => {
    expect(() =>
      loadConfig({
        API_WORKER_CLAIM_TIMEOUT_SECS: '2',
        API_PROVIDER_TIMEOUT_MS: '1000',
      }),
    ).not.toThrow()
    const error = configError({
      API_WORKER_CLAIM_TIMEOUT_SECS: '2',
      API_PROVIDER_TIMEOUT_MS: '1001',
    })
    expect(error.variable).toBe('API_WORKER_CLAIM_TIMEOUT_SECS')
    expect(error.message).toContain('API_PROVIDER_TIMEOUT_MS')
  })
})
