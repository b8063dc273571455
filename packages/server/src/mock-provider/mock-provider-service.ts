import type {
  IncomingHttpHeaders,
  IncomingMessage,
  ServerResponse,
} from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  configToJson,
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
import { RequestLog, type RequestLogSnapshot } from './request-log.js'
import type { Settings } from './server-options.js'

/** The server's state, and the handling of provider calls. */
export class MockProviderService {
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
