import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type FieldError,
  isParleyError,
  isValidationError,
  type Logger,
  type MockProvider,
  type Parley,
  type RateLimitDecision,
  RateLimitedError,
} from '@parley/core'
import {
  authenticate,
  type Edge,
  limitClient,
  pathKindOf,
  RateLimitedHttpError,
  verifyWebhook,
} from './edge.js'
import {
  type BreakerPass,
  breakerOpenError,
  failureMessage,
  requestOutcome,
} from './global-breaker.js'
import { closestToExhaustion } from './rate-limit-headers.js'
import { readBody } from './body.js'
import { HANDLERS, type HandlerContext, type HandlerInput } from './handlers.js'
import {
  type ErrorAnswer,
  type ErrorCode,
  HttpError,
  STATUS_OF,
} from './http-error.js'
import { checkAcceptsJson, checkContentType } from './negotiate.js'
import { parseBody } from './parse.js'
import { requestIdOf, sendError, sendJson, sendText } from './respond.js'
import { matchRoute, type Route, type RouteName } from './routes.js'

/** What the request handler needs. */
export interface AppOptions {
  /** The instance the API serves. */
  readonly parley: Parley
  /** The mock providers the server runs (for their live settings). */
  readonly mocks?: readonly MockProvider[]
  /** Where request and error lines go. */
  readonly logger: Logger
  /** The largest request body read, in bytes; a larger one gets 413. */
  readonly maxBodyBytes: number
  /** How long a request body may take to arrive, in ms; then 408. */
  readonly bodyTimeoutMs: number
  /** True once shutdown began: new requests get 503. */
  readonly isShuttingDown: () => boolean
  /**
   * The edge: global breaker, per-client limits, API keys and webhook
   * signatures. Without it none of these apply (for embedding behind an
   * edge of one's own).
   */
  readonly edge?: Edge
}

/** A `node:http` request listener serving the Parley API. */
export type RequestListener = (
  request: IncomingMessage,
  response: ServerResponse,
) => void

// What one request learned on its way through the pipeline.
interface RequestState {
  readonly requestId: string
  pass?: BreakerPass
  clientLimit?: RateLimitDecision
  route?: RouteName
  error?: unknown
  /** Bytes of request body read (logged instead of the body). */
  bodyBytes?: number
  /** The error code answered, if any. */
  errorCode?: string
}

// Routes whose handlers never touch storage: their success must not close
// the global breaker (DESIGN section 6: a trial that reaches the database
// and succeeds closes it).
const IN_MEMORY_ROUTES: ReadonlySet<RouteName> = new Set([
  'get_mock_config',
  'put_mock_config',
])

/**
 * Builds the request listener. Each request runs the pipeline of DESIGN
 * section 4 in order: request id; shutdown check; the global breaker and
 * the per-client limit (API and webhook paths, before the body is read);
 * API key; method and route; `Accept` and `Content-Type`; body (size limit,
 * read timeout); webhook signature; parse; then the handler, where core
 * validates, applies the per-sender limit and idempotency, and writes.
 */
export function createApp(options: AppOptions): RequestListener {
  // The same for every request.
  const context: HandlerContext = {
    parley: options.parley,
    mocks: options.mocks ?? [],
  }
  return (request, response) => {
    const started = performance.now()
    const requestId = requestIdOf(request)
    const state: RequestState = { requestId }
    response.on('finish', () =>
      logRequest(options.logger, request, response, state, started),
    )
    response.once('close', () => settleBreaker(options, response, state))
    handle(options, context, request, response, state).catch(
      (error: unknown) => {
        state.error = error
        closeIfStopping(options, response)
        fail(options.logger, request, response, requestId, error, state)
      },
    )
  }
}

async function handle(
  options: AppOptions,
  context: HandlerContext,
  request: IncomingMessage,
  response: ServerResponse,
  state: RequestState,
): Promise<void> {
  const target = requestTarget(request.url ?? '/')
  requireHost(request)
  if (options.isShuttingDown()) refuseWhileStopping(target.pathname, response)
  const keyId = await passEdge(options, request, target.pathname, state)
  const route = findRoute(request.method ?? 'GET', target.pathname)
  state.route = route.route.name
  if (!route.route.negotiates) checkAcceptsJson(request)
  const input = await readInput(options, request, route, target, {
    keyId,
    requestId: state.requestId,
  })
  state.bodyBytes = input.bodyBytes
  const result = await HANDLERS[route.route.name](context, input)
  const answer = {
    requestId: state.requestId,
    rateLimit: closestToExhaustion(state.clientLimit, result.rateLimit),
    extra: result.headers,
  }
  closeIfStopping(options, response)
  if (result.text) {
    sendText(request, response, result.status, result.text, answer)
  } else {
    sendJson(request, response, result.status, result.body, answer)
  }
}

// Once shutdown began, no answer invites the client to reuse its
// connection: the listener closes soon after, and a request sent on a
// kept-alive socket then would meet a reset instead of an answer.
function closeIfStopping(options: AppOptions, response: ServerResponse): void {
  if (options.isShuttingDown() && !response.headersSent) {
    response.setHeader('Connection', 'close')
  }
}

// The global breaker, the per-client limit and the API key, for API and
// webhook paths; health, readiness and metrics bypass them all.
async function passEdge(
  options: AppOptions,
  request: IncomingMessage,
  pathname: string,
  state: RequestState,
): Promise<string> {
  const edge = options.edge
  const kind = pathKindOf(pathname)
  if (!edge || kind === 'operations') return '-'
  const admission = edge.breaker.admit()
  if (!admission.allowed) throw breakerOpenError(admission)
  state.pass = admission
  state.clientLimit = await limitClient(options.parley, edge, request, kind)
  return authenticate(edge, request, kind)
}

function settleBreaker(
  options: AppOptions,
  response: ServerResponse,
  state: RequestState,
): void {
  if (!options.edge || !state.pass) return
  const outcome = requestOutcome({
    status: response.statusCode,
    error: state.error,
    shuttingDown: options.isShuttingDown(),
    reachesBackend: !(state.route && IN_MEMORY_ROUTES.has(state.route)),
    // 'close' without a finished answer: the client hung up first.
    abandoned: !response.writableFinished,
  })
  options.edge.breaker.settle(state.pass, outcome, failureMessage(state.error))
}

// The path and query of the request target.
interface Target {
  readonly pathname: string
  readonly query: URLSearchParams
}

// A target URL parsing leaves as it is: segments of unreserved characters,
// none a dot segment, no query. Most requests have one.
const PLAIN_PATH = /^(?:\/[\w~-][\w.~-]*)*\/?$/

// Origin-form targets ('/path?query') are resolved against a fixed base by
// concatenation, so that '//x' stays the path '//x' instead of naming a
// host; an absolute-form target keeps only its path and query.
function requestTarget(target: string): Target {
  if (PLAIN_PATH.test(target)) {
    return { pathname: target, query: new URLSearchParams() }
  }
  const base = 'http://localhost'
  let url: URL
  try {
    url = target.startsWith('/') ? new URL(base + target) : new URL(target)
  } catch {
    throw new HttpError('not_found', 'the request target is not a valid path')
  }
  return { pathname: url.pathname, query: url.searchParams }
}

// HTTP/1.1 requires exactly one Host (RFC 9112 section 3.2: a server
// answers 400 to none or several). Node's own refusal is a bare 400 and it
// lets duplicates through (keeping the first), so both are refused here,
// with the error body and headers every answer carries.
function requireHost(request: IncomingMessage): void {
  const hosts = hostHeaderCount(request)
  if (hosts > 1) {
    throw new HttpError(
      'invalid_request',
      'a request may carry one Host header',
    )
  }
  if (request.httpVersion !== '1.1' || hosts === 1) return
  throw new HttpError(
    'invalid_request',
    'an HTTP/1.1 request needs a Host header',
  )
}

function hostHeaderCount(request: IncomingMessage): number {
  let count = 0
  const raw = request.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') count += 1
  }
  return count
}

// While shutting down, liveness and metrics keep answering (the process
// still serves them truthfully); everything else, readiness included, is
// refused so that clients and load balancers move on.
function refuseWhileStopping(pathname: string, response: ServerResponse): void {
  // One trailing slash is ignored, as the router ignores it.
  const path = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname
  if (path === '/healthz' || path === '/metrics') return
  response.setHeader('Connection', 'close')
  throw new HttpError('unavailable', 'the server is shutting down', {
    'Retry-After': '5',
  })
}

function findRoute(method: string, pathname: string) {
  const match = matchRoute(method, pathname)
  switch (match.kind) {
    case 'found':
      return match
    case 'wrong_method':
      throw new HttpError(
        'method_not_allowed',
        `${method} is not allowed here; use ${match.allow.join(', ')}`,
        { Allow: match.allow.join(', ') },
      )
    case 'none':
      throw new HttpError('not_found', `no route for ${pathname}`)
  }
}

// One object literal per outcome (no spreads): this runs on every request.
async function readInput(
  options: AppOptions,
  request: IncomingMessage,
  match: { readonly route: Route; readonly params: HandlerInput['params'] },
  target: Target,
  caller: { keyId: string; requestId: string },
): Promise<HandlerInput & { bodyBytes?: number }> {
  const { route, params } = match
  const { query } = target
  const { headers } = request
  const { requestId } = caller
  const receivedAt = Date.now()
  const idempotencyKey = headerValue(request, 'idempotency-key')
  const idempotencyScope = `http:${route.name}:${caller.keyId}`
  let body: unknown
  let bodyType: HandlerInput['bodyType']
  let bodyBytes: number | undefined
  if (route.bodies) {
    bodyType = checkContentType(request, route.bodies)
    const bytes = await readBody(request, {
      maxBytes: options.maxBodyBytes,
      timeoutMs: options.bodyTimeoutMs,
    })
    if (options.edge) verifyWebhook(options.edge, route.name, request, bytes)
    body = parseBody(bytes, bodyType)
    bodyBytes = bytes.length
  }
  return {
    params,
    query,
    headers,
    receivedAt,
    idempotencyKey,
    idempotencyScope,
    requestId,
    body,
    bodyType,
    bodyBytes,
  }
}

function headerValue(
  request: IncomingMessage,
  name: string,
): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

function fail(
  logger: Logger,
  request: IncomingMessage,
  response: ServerResponse,
  requestId: string,
  error: unknown,
  state: RequestState,
): void {
  const answered = toErrorAnswer(error)
  state.errorCode = answered.code
  if (answered.code === 'internal') {
    logger.error('http.internal_error', {
      request_id: requestId,
      error:
        error instanceof Error ? (error.stack ?? error.message) : String(error),
    })
  }
  if (response.headersSent) {
    response.destroy()
    return
  }
  // After an oversized or unfinished body the rest of it is unread: the
  // connection cannot carry another request.
  if (
    answered.code === 'payload_too_large' ||
    answered.code === 'request_timeout'
  ) {
    response.setHeader('Connection', 'close')
  }
  sendError(request, response, answered, {
    requestId,
    rateLimit: closestToExhaustion(state.clientLimit, refusedDecision(error)),
  })
}

function refusedDecision(error: unknown): RateLimitDecision | undefined {
  if (error instanceof RateLimitedHttpError) return error.decision
  if (error instanceof RateLimitedError) return error.decision
  return undefined
}

// What an error is answered with. Errors of core become a plain answer, not
// an HttpError: constructing an Error captures a stack trace nobody reads,
// a measurable cost when every request of a flood is refused.
function toErrorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof HttpError) return error
  if (isValidationError(error)) {
    return errorAnswer('validation_failed', error.message, {}, error.details)
  }
  if (isParleyError(error)) {
    const retry: Record<string, string> =
      error.code === 'unavailable' ? { 'Retry-After': '5' } : {}
    return errorAnswer(error.code, error.message, retry)
  }
  return errorAnswer(
    'internal',
    'internal error; see the server log for this request id',
  )
}

function errorAnswer(
  code: ErrorCode,
  message: string,
  headers: Readonly<Record<string, string>> = {},
  details?: readonly FieldError[],
): ErrorAnswer {
  return { status: STATUS_OF[code], code, message, headers, details }
}

// Paths longer than this are cut in the log (with a note of how much):
// anyone can send one, and a line past 4 KiB may be cut in half when the
// log's reader stalls (see the log sink).
const MAX_LOGGED_PATH = 1024

/** The path of a request target as logged: no query, at most 1 KiB. */
export function loggedPath(target = '/'): string {
  const query = target.indexOf('?')
  const path = query === -1 ? target : target.slice(0, query)
  if (path.length <= MAX_LOGGED_PATH) return path
  const more = path.length - MAX_LOGGED_PATH
  return `${path.slice(0, MAX_LOGGED_PATH)}...(${more} more characters)`
}

// Never the query, headers or body: the body only as its length.
function logRequest(
  logger: Logger,
  request: IncomingMessage,
  response: ServerResponse,
  state: RequestState,
  started: number,
): void {
  logger.info('http.request', {
    request_id: state.requestId,
    method: request.method,
    path: loggedPath(request.url),
    status: response.statusCode,
    code: state.errorCode,
    body_bytes: state.bodyBytes,
    duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
  })
}
