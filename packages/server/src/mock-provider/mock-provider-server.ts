import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  configToJson,
  type MockBehaviourPatch,
  type MockProviderConfig,
} from './behaviour.js'
import { MockProviderService } from './mock-provider-service.js'
import type { MockCredentials } from './provider-apis.js'
import type { RecordedRequest } from './request-log.js'
import {
  checkedOptions,
  configError,
  type MockProviderServerOptions,
  type Settings,
} from './server-options.js'

/** A running mock provider server. */
export interface MockProviderServer {
  /** Its base URL, e.g. `http://127.0.0.1:4010`: the adapters' baseUrl. */
  readonly url: string
  /** The port it listens on. */
  readonly port: number
  /** The credentials it accepts. */
  readonly credentials: MockCredentials
  /** The behaviour in force for each family. */
  readonly config: MockProviderConfig
  /**
   * Changes the behaviour, as `PUT /__mock/config` does: shared fields
   * apply to both families, `sms` and `email` to one.
   * @throws RangeError naming each invalid field; nothing changes then.
   */
  configure(patch: MockBehaviourPatch): MockProviderConfig
  /** The requests received (control calls aside), oldest first. */
  requests(): readonly RecordedRequest[]
  /** How many calls repeated a (family, message id, attempt). */
  duplicates(): number
  /** Forgets the recorded requests and the counters; settings stay. */
  reset(): void
  /** Stops listening and drops every open connection, held ones too. */
  close(): Promise<void>
}

/**
 * Starts a standalone mock provider server that speaks the Twilio
 * Messages API and the SendGrid Mail Send API, and fails on the same
 * seeded schedule as the in-process mock: a call's outcome is a pure
 * function of (seed, family, `X-Parley-Message-Id`, `X-Parley-Attempt`).
 * A `timeout` fault holds the request without answering, `error` answers
 * 500 or 503 (odd or even attempt), `rate_limit` answers 429 with
 * `Retry-After`. A control API on the same port reads and changes the
 * settings (`GET`/`PUT /__mock/config`) and lists or clears the recorded
 * requests (`GET`/`DELETE /__mock/requests`).
 *
 * @throws TypeError or RangeError naming an invalid option.
 *
 * @example
 * const mock = await startMockProviderServer({ seed: 7, errorPct: 30 })
 * const { accountSid, authToken } = mock.credentials
 * const twilio = createTwilioProvider({ baseUrl: mock.url, accountSid, authToken })
 */
export async function startMockProviderServer(
  options: MockProviderServerOptions = {},
): Promise<MockProviderServer> {
  const settings = checkedOptions(options)
  const service = new MockProviderService(settings)
  const server = createServer((request, response) => {
    service.handle(request, response).catch((error: unknown) => {
      settings.logger.error('mock_provider.failed', { error: String(error) })
      response.destroy()
    })
  })
  await listen(server, settings.port, settings.host)
  const port = (server.address() as AddressInfo).port
  const url = `http://${urlHost(settings.host)}:${port}`
  settings.logger.info('mock_provider.listening', {
    url,
    config: configToJson(service.config),
  })
  warnIfExposed(settings)
  return runningServer(service, server, url, port)
}

function runningServer(
  service: MockProviderService,
  server: Server,
  url: string,
  port: number,
): MockProviderServer {
  let closing: Promise<void> | undefined
  return {
    url,
    port,
    credentials: service.credentials,
    get config() {
      return service.config
    },
    configure(patch) {
      const problems = service.configure(patch, 'options')
      if (problems.length > 0) throw configError(problems)
      return service.config
    },
    requests: () => service.snapshot().requests,
    duplicates: () => service.snapshot().duplicates,
    reset: () => service.reset(),
    close: () => (closing ??= closeServer(service, server)),
  }
}

async function closeServer(
  service: MockProviderService,
  server: Server,
): Promise<void> {
  service.stop()
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeAllConnections()
  await closed
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

function warnIfExposed(settings: Settings): void {
  if (LOOPBACK.test(settings.host)) return
  settings.logger.warn('mock_provider.exposed', {
    host: settings.host,
    message:
      'the mock provider listens beyond loopback: anyone who reaches it ' +
      'can read the recorded requests and change its settings',
  })
}
