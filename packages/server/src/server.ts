import { randomUUID } from 'node:crypto'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, Server as NetServer } from 'node:net'
import {
  createParley,
  DatabaseRateLimitStore,
  type Logger,
  type Parley,
  type ParleyDatabase,
  type RateLimitStore,
} from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { openSqlite } from '@parley/core/sqlite'
import { ConfigError, type ServerConfig } from './config.js'
import { createApp, loggedPath } from './http/app.js'
import { requestIdOf, sendJson } from './http/respond.js'
import type { Edge } from './http/edge.js'
import { installCheckContinue } from './http/expect-continue.js'
import { GlobalBreaker } from './http/global-breaker.js'
import { buildProviders } from './providers.js'

/** A listening Parley server. */
export interface RunningServer {
  /** The base URL it listens on, e.g. `http://127.0.0.1:8080`. */
  readonly url: string
  /** The port it listens on (the one picked, when the config said 0). */
  readonly port: number
  /** The Parley instance behind it. */
  readonly parley: Parley
  /**
   * Shuts down as DESIGN section 8 says: readiness fails, new requests get
   * 503, requests in flight and workers finish (or hand back their work)
   * within the grace period, then the listener and database close.
   * Resolves the process exit code: 0, or 1 if the grace period ran out
   * with work still held.
   */
  shutdown(): Promise<number>
}

/** Options of {@link startServer}. */
export interface StartOptions {
  /** The configuration, as `loadConfig` reads it from the environment. */
  readonly config: ServerConfig
  /** Where every log line goes. */
  readonly logger: Logger
  /**
   * Storage to use instead of opening `config.storage` (an instrumented
   * database, or one shared with the embedding application). The server
   * migrates it but does not close it: its owner does.
   * @default the database `config.storage` names, closed on shutdown
   */
  readonly database?: ParleyDatabase
}

/** Opens storage, runs migrations, starts the workers and listens. */
export async function startServer(
  options: StartOptions,
): Promise<RunningServer> {
  const { config, logger } = options
  const opened = options.database ?? openDatabase(config, logger)
  // The server closes only what it opened.
  const db: ParleyDatabase = options.database
    ? { ...opened, close: async () => undefined }
    : opened
  const { providers, mocks } = buildProviders(config, logger)
  let parley: Parley
  try {
    parley = await createParley({
      db,
      providers,
      config: config.core,
      logger,
      rateLimitStore: rateLimitStore(config, db),
    })
  } catch (error) {
    await db.close()
    throw storageError(error, config)
  }
  let shuttingDown = false
  const requests = new InFlight()
  const app = createApp({
    parley,
    mocks,
    edge: createEdge(config, parley, logger),
    logger,
    maxBodyBytes: config.maxBodyBytes,
    bodyTimeoutMs: config.bodyTimeoutMs,
    isShuttingDown: () => shuttingDown,
  })
  // Requests without Host reach the app, which answers them 400 in JSON.
  const server = createServer(
    { requireHostHeader: false },
    (request, response) => {
      requests.enter(response)
      app(request, response)
    },
  )
  installCheckContinue(server, { maxBodyBytes: config.maxBodyBytes })
  answerUnparsedRequests(server, logger)
  try {
    await listen(server, config.port, config.host)
  } catch (error) {
    await db.close()
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(
      `cannot listen on HOST ${config.host} PORT ${config.port}: ${reason}`,
      { cause: error },
    )
  }
  await parley.start()
  const port = (server.address() as AddressInfo).port
  const url = `http://${urlHost(config.host)}:${port}`
  logger.info('server.listening', { url, database: describeStorage(config) })

  let closing: Promise<number> | undefined
  const shutdown = () => {
    shuttingDown = true
    closing ??= closeGracefully({
      server,
      requests,
      parley,
      db,
      config,
      logger,
    })
    return closing
  }
  return { url, port, parley, shutdown }
}

// A file that cannot be opened (a folder, not a database, no permission)
// is a bad DATABASE_URL: say so by the variable's name.
// Requests Node refuses before the app sees them (malformed framing,
// oversized headers, an Expect other than 100-continue) still get the
// JSON error body and the security headers every answer carries.
function answerUnparsedRequests(server: Server, logger: Logger): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    // Bad bytes after a good request on the same connection: that request
    // is still being answered, and its answer must not be replaced by this
    // one. It goes out as usual, and the connection then closes.
    const pending = (socket as { _httpMessage?: { shouldKeepAlive: boolean } })
      ._httpMessage
    if (pending) {
      pending.shouldKeepAlive = false
      return
    }
    const oversized = error.code === 'HPE_HEADER_OVERFLOW'
    const requestId = requestIdFromRaw(error) ?? randomUUID()
    // One http.request line per answered request, these too; the method
    // and path are unknown (the request line may be what was malformed).
    logger.info('http.request', {
      request_id: requestId,
      status: oversized ? 431 : 400,
      code: oversized ? 'headers_too_large' : 'invalid_request',
      body_bytes: 0,
      duration_ms: 0,
    })
    socket.end(
      oversized
        ? rawErrorResponse(
            requestId,
            431,
            'headers_too_large',
            'the request headers are too large',
          )
        : rawErrorResponse(
            requestId,
            400,
            'invalid_request',
            'the request is not valid HTTP',
          ),
    )
  })
  server.on('checkExpectation', (request, response) => {
    const requestId = requestIdOf(request)
    sendJson(
      request,
      response,
      417,
      {
        code: 'expectation_failed',
        message: 'only Expect: 100-continue is supported',
        request_id: requestId,
      },
      { requestId, extra: { Connection: 'close' } },
    )
    request.resume()
    logger.info('http.request', {
      request_id: requestId,
      method: request.method,
      path: loggedPath(request.url),
      status: 417,
      code: 'expectation_failed',
      body_bytes: 0,
      duration_ms: 0,
    })
  })
}

// The client's X-Request-Id, read from the bytes Node could not parse, when
// it is a valid one (1 to 128 visible ASCII characters).
function requestIdFromRaw(error: NodeJS.ErrnoException): string | undefined {
  const raw = (error as { rawPacket?: Buffer }).rawPacket
  if (!raw) return undefined
  const match = /\r\nx-request-id:[ \t]*([\x21-\x7e]{1,128})[ \t]*\r\n/i.exec(
    raw.toString('latin1'),
  )
  return match?.[1]
}

function rawErrorResponse(
  requestId: string,
  status: number,
  code: string,
  message: string,
): string {
  const body = JSON.stringify({ code, message, request_id: requestId })
  const reason =
    status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'
  return [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    'X-Content-Type-Options: nosniff',
    'X-Frame-Options: DENY',
    'Cache-Control: no-store',
    'Referrer-Policy: no-referrer',
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'",
    'Connection: close',
    '',
    body,
  ].join('\r\n')
}

function createEdge(
  config: ServerConfig,
  parley: Parley,
  logger: Logger,
): Edge {
  const breaker = new GlobalBreaker({
    threshold: config.edge.globalBreaker.threshold,
    openMs: config.edge.globalBreaker.openMs,
    onTransition: (from, to) => {
      parley.ingress.breakerTransitioned()
      logger.warn('http.global_breaker_transition', { from, to })
    },
    onShortCircuit: () => parley.ingress.breakerShortCircuited(),
  })
  warnAboutOpenDoors(config, logger)
  return { config: config.edge, breaker }
}

function warnAboutOpenDoors(config: ServerConfig, logger: Logger): void {
  const { apiKeys, smsWebhookToken, emailWebhookSecret, sendgridPublicKey } =
    config.edge
  const unsigned = [
    smsWebhookToken === undefined && 'SMS webhooks and status callbacks',
    emailWebhookSecret === undefined && 'email webhooks',
    sendgridPublicKey === undefined && 'email event callbacks',
  ].filter((item): item is string => typeof item === 'string')
  if (apiKeys.length > 0 && unsigned.length > 0) {
    logger.warn('security.webhooks_unsigned', {
      message: `API keys are set but these webhooks accept unsigned posts: ${unsigned.join(', ')}`,
    })
  }
  if (apiKeys.length === 0) {
    logger.warn('security.api_open', {
      message: 'API_KEYS is not set: the API accepts requests without a key',
    })
  }
}

// Undefined: core's default, an in-memory store of API_RATE_LIMIT_MAX_KEYS
// buckets.
function rateLimitStore(
  config: ServerConfig,
  db: ParleyDatabase,
): RateLimitStore | undefined {
  if (config.edge.rateLimitStore === 'memory') return undefined
  return new DatabaseRateLimitStore({ db })
}

function openDatabase(config: ServerConfig, logger: Logger): ParleyDatabase {
  const storage = config.storage
  try {
    if (storage.kind === 'postgres') {
      return openPostgres({
        connectionString: storage.connectionString,
        poolMax: storage.poolMax,
        schema: storage.schema,
        logger,
      })
    }
    return openSqlite({
      filename: storage.filename,
      synchronous: storage.synchronous,
    })
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new ConfigError(
      'DATABASE_URL',
      `cannot open ${describeStorage(config)}: ${reason}`,
    )
  }
}

interface Closing {
  readonly server: Server
  readonly requests: InFlight
  readonly parley: Parley
  readonly db: ParleyDatabase
  readonly config: ServerConfig
  readonly logger: Logger
}

// The order matters: requests already in flight may still write, so the
// workers stop only after they finished (or the grace period ran out); the
// listener stays open meanwhile and answers new requests 503.
async function closeGracefully(closing: Closing): Promise<number> {
  const { server, requests, parley, db, config, logger } = closing
  const deadline = Date.now() + config.shutdownGraceMs
  logger.info('server.shutdown_started', { grace_ms: config.shutdownGraceMs })
  // Idle keep-alive connections stay open: a request sent on one now gets
  // a 503 with `Connection: close` rather than a reset socket. Only the
  // requests admitted before the signal are waited for: under load the
  // refusals keep arriving, and none of them holds any work.
  const requestsDone = await withDeadline(
    requests.admittedBefore(),
    deadline - Date.now(),
  )
  const workersDone = await parley.stop({
    graceMs: Math.max(deadline - Date.now(), 0),
  })
  await requests.quiet(QUIET_BEFORE_CLOSE_MS, deadline)
  logger.info('server.listener_closing', {
    arrived_while_stopping: requests.lateArrivals,
  })
  // A request admitted before the signal and still unfinished has had its
  // grace period: it is cut at once. Refusals get a moment to finish.
  await closeListener(server, requests, requestsDone ? LAST_ANSWERS_MS : 0)
  await db.close()
  const code = workersDone && requestsDone ? 0 : 1
  logger.info('server.shutdown_finished', {
    exit_code: code,
    workers_done: workersDone,
    requests_done: requestsDone,
  })
  return code
}

// Stops accepting, lets the answers being written finish (they are quick
// refusals by now, each closing its connection) for up to `lastAnswersMs`,
// then ends what is left.
async function closeListener(
  server: Server,
  requests: InFlight,
  lastAnswersMs: number,
): Promise<void> {
  // The listening socket alone: http's own close() would also end the
  // idle connections at once, and a connection accepted just before has
  // not delivered its request yet, so Node counts it idle and would reset
  // it. It gets a moment to send instead, and is answered 503.
  // Connections the kernel has queued for accepting are taken first: once
  // the listening socket closes, the kernel resets them.
  await delay(ACCEPT_QUEUE_MS)
  const closed = new Promise<void>((resolve) =>
    NetServer.prototype.close.call(server, () => resolve()),
  )
  await delay(Math.min(UNPARSED_GRACE_MS, lastAnswersMs))
  server.closeIdleConnections()
  await withDeadline(requests.allDone(), lastAnswersMs)
  server.closeAllConnections()
  await closed
}

// How long answers still being written when the listener closes may take.
const LAST_ANSWERS_MS = 1000

// How long a connection accepted before the listener closed has to deliver
// its request before idle connections are closed.
const UNPARSED_GRACE_MS = 300

// A pause before the listening socket closes, in which the event loop
// accepts what the kernel has queued.
const ACCEPT_QUEUE_MS = 20

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function withDeadline(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(ms, 0))
  })
  const done = await Promise.race([work.then(() => true as const), expired])
  clearTimeout(timer)
  return done
}

// Requests still arriving after the drain (clients that have not seen a
// 503 yet) get one rather than a reset: the listener closes only after this
// long without a new request, or at the deadline.
const QUIET_BEFORE_CLOSE_MS = 250

/** The requests whose response has not closed yet. */
class InFlight {
  private readonly open = new Set<ServerResponse>()
  private lastEnter = 0
  private stopping = false
  /** Requests that arrived once shutdown began. */
  lateArrivals = 0

  enter(response: ServerResponse): void {
    this.open.add(response)
    this.lastEnter = Date.now()
    if (this.stopping) this.lateArrivals += 1
    response.once('close', () => this.open.delete(response))
  }

  /**
   * Resolves once every request that arrived before this call has closed;
   * later ones are counted as late arrivals.
   */
  admittedBefore(): Promise<void> {
    this.stopping = true
    return closedAll([...this.open])
  }

  /** Resolves once every request open now has closed. */
  allDone(): Promise<void> {
    return closedAll([...this.open])
  }

  private get count(): number {
    return this.open.size
  }

  /** Resolves once no request is running and none came for `quietMs`. */
  async quiet(quietMs: number, deadline: number): Promise<void> {
    for (;;) {
      const idleFor = Date.now() - this.lastEnter
      if (this.count === 0 && idleFor >= quietMs) return
      const wait = Math.min(
        deadline - Date.now(),
        Math.max(quietMs - idleFor, 10),
      )
      if (wait <= 0) return
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }
}

async function closedAll(responses: readonly ServerResponse[]): Promise<void> {
  await Promise.all(
    responses.map((response) =>
      response.closed
        ? undefined
        : new Promise<void>((resolve) => response.once('close', resolve)),
    ),
  )
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
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

// Names the database without its credentials.
// Start-up failed. Core's refusals of an option (RangeError, TypeError)
// pass as they are; anything else came from the database (refused
// connection, unknown database or role, failed migration) and is said
// with the variable that points at it.
function storageError(error: unknown, config: ServerConfig): unknown {
  if (error instanceof RangeError || error instanceof TypeError) return error
  const reason = error instanceof Error ? error.message : String(error)
  return new Error(
    `DATABASE_URL: cannot use ${describeStorage(config)}: ${reason}`,
    { cause: error },
  )
}

function describeStorage(config: ServerConfig): string {
  const storage = config.storage
  if (storage.kind === 'sqlite') return `the SQLite file ${storage.filename}`
  const url = new URL(storage.connectionString)
  return `Postgres at ${url.host}${url.pathname}`
}
