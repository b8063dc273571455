import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Logger, silentLogger } from '@parley/core'
import {
  configToJson,
  defaultBehaviour,
  type MockBehaviourPatch,
  type MockConfigProblem,
  type MockProviderConfig,
  patchConfig,
} from './behaviour.js'
import { serveControl } from './control-api.js'
import {
  type CallIdentity,
  type Decision,
  decide,
  type MockCall,
  tooLarge,
  unknownPath,
} from './decide.js'
import { parseBody, readBody, writeAnswer } from './http-io.js'
import {
  type MockApi,
  type MockCredentials,
  sendGridApi,
  twilioApi,
} from './provider-apis.js'
import {
  type RecordedRequest,
  RequestLog,
  type RequestLogSnapshot,
} from './request-log.js'

/** Options of {@link startMockProviderServer}. */
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

/** A running mock provider server. */
export interface MockProviderServer {
  /** Its base URL, e.g. `http://127.0.0.1:4010`: the adapters' baseUrl. */
  readonly url: string
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

/** The credentials the mock server accepts unless told otherwise. */
export const MOCK_PROVIDER_CREDENTIALS: MockCredentials = Object.freeze({
  accountSid: 'ACmock',
  authToken: 'mock-auth-token',
  apiKey: 'mock-api-key',
})

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

interface Settings {
  readonly port: number
  readonly host: string
  readonly credentials: MockCredentials
  readonly logger: Logger
  readonly maxRecordedRequests: number
  readonly maxBodyBytes: number
  readonly config: MockProviderConfig
}

function checkedOptions(options: MockProviderServerOptions): Settings {
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
      accountSid: text('accountSid', accountSid, /[:/]/),
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

function configError(problems: readonly MockConfigProblem[]): RangeError {
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

function text(option: string, value: unknown, forbidden?: RegExp): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${option} must be a non-empty string`)
  }
  if (forbidden?.test(value) === true) {
    throw new RangeError(`${option} must not contain ${forbidden.source}`)
  }
  return value
}

/** The server's state, and the handling of provider calls. */
class MockProviderService {
  config: MockProviderConfig
  readonly credentials: MockCredentials
  private readonly apis: readonly MockApi[]
  private readonly log: RequestLog
  private readonly lifetime = new AbortController()
  private readonly held = new Set<ReturnType<typeof setTimeout>>()
  private anonymousCalls = 0

  constructor(private readonly settings: Settings) {
    this.config = settings.config
    this.credentials = settings.credentials
    this.apis = [
      twilioApi(settings.credentials),
      sendGridApi(settings.credentials),
    ]
    this.log = new RequestLog(settings.maxRecordedRequests)
  }

  /** Answers one request: a control call, or a provider call. */
  async handle(
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const target = request.url ?? '/'
    const path = target.split('?')[0] ?? '/'
    if (path.startsWith('/__mock/')) {
      return serveControl(request, response, path, this.controlTarget())
    }
    const api = this.apis.find((candidate) => candidate.matches(path))
    const read = await readBody(request, this.settings.maxBodyBytes)
    if (read.kind === 'aborted') return

    const text = read.kind === 'read' ? read.text : ''
    const call: MockCall = {
      method: request.method ?? 'GET',
      path,
      headers: request.headers,
      body: parseBody(request.headers['content-type'], text),
      identity: this.identify(request.headers),
    }
    const decision = this.decideFor(api, call, read.kind === 'too_large')
    this.record(target, text, call, api, decision)
    await this.answer(response, api, decision)
  }

  /**
   * Applies a patch; returns its problems, named as `naming` says, and
   * changes nothing when there are any.
   */
  configure(
    patch: MockBehaviourPatch,
    naming: 'json' | 'options',
  ): MockConfigProblem[] {
    const { config, problems } = patchConfig(this.config, patch, naming)
    if (problems.length > 0) return problems
    this.config = config
    this.settings.logger.info('mock_provider.config_changed', {
      config: configToJson(config),
    })
    return []
  }

  snapshot(): RequestLogSnapshot {
    return this.log.snapshot()
  }

  reset(): void {
    this.log.clear()
    this.anonymousCalls = 0
  }

  /** Ends every wait and every held request's timer. */
  stop(): void {
    this.lifetime.abort()
    for (const timer of this.held) clearTimeout(timer)
    this.held.clear()
  }

  private controlTarget() {
    return {
      config: () => this.config,
      configure: (patch: MockBehaviourPatch) => this.configure(patch, 'json'),
      snapshot: () => this.snapshot(),
      reset: () => this.reset(),
    }
  }

  private identify(headers: IncomingHttpHeaders): CallIdentity {
    const messageId = headers['x-parley-message-id']
    const attempt = headers['x-parley-attempt']
    if (
      typeof messageId === 'string' &&
      messageId !== '' &&
      typeof attempt === 'string' &&
      /^[1-9]\d{0,8}$/.test(attempt)
    ) {
      return { messageId, attempt: Number(attempt), identified: true }
    }
    this.anonymousCalls += 1
    const messageIdOfCount = `anonymous-${this.anonymousCalls}`
    return { messageId: messageIdOfCount, attempt: 1, identified: false }
  }

  private decideFor(
    api: MockApi | undefined,
    call: MockCall,
    bodyTooLarge: boolean,
  ): Decision {
    if (bodyTooLarge) return tooLarge(api)
    if (api === undefined) return unknownPath()
    return decide(api, this.config[api.family], call)
  }

  private async answer(
    response: ServerResponse,
    api: MockApi | undefined,
    decision: Decision,
  ): Promise<void> {
    const behaviour = api === undefined ? undefined : this.config[api.family]
    if (decision.answer === null) {
      this.hold(response, behaviour?.hangMs ?? null)
      return
    }
    const slowMs = behaviour?.slowMs ?? 0
    if (slowMs > 0 && !(await this.wait(slowMs))) return
    if (!response.destroyed) writeAnswer(response, decision.answer)
  }

  // A `timeout` fault: no answer. After hangMs the connection is dropped;
  // without hangMs it stays open until the client (or close()) ends it.
  private hold(response: ServerResponse, hangMs: number | null): void {
    if (hangMs === null) return
    const timer = setTimeout(() => response.destroy(), hangMs)
    this.held.add(timer)
    response.once('close', () => {
      clearTimeout(timer)
      this.held.delete(timer)
    })
  }

  /** Sleeps; false when the server closed meanwhile. */
  private async wait(ms: number): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal: this.lifetime.signal })
      return true
    } catch {
      return false
    }
  }

  private record(
    target: string,
    text: string,
    call: MockCall,
    api: MockApi | undefined,
    decision: Decision,
  ): void {
    const family = api?.family ?? null
    const status = decision.answer?.status ?? null
    const { messageId, attempt, identified } = call.identity
    this.log.record(
      {
        receivedAt: new Date().toISOString(),
        method: call.method,
        path: target,
        headers: { ...call.headers },
        body: text,
        form: call.body.form,
        json: call.body.json ?? null,
        family,
        messageId,
        attempt,
        outcome: decision.outcome,
        status,
      },
      identified && api !== undefined,
    )
    this.settings.logger.info('mock_provider.call', {
      family,
      message_id: messageId,
      attempt,
      outcome: decision.outcome,
      status,
    })
  }
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
