import ky, { isTimeoutError, type KyInstance, type Options } from 'ky'

import {
  ApiError,
  BlockedPortError,
  ServerTimeoutError,
  ServerUnreachableError,
  UnexpectedResponseError,
  type ErrorDetail,
} from '../errors.js'

/** How to reach a Parley server. */
export interface ApiClientOptions {
  /** The server's base URL, such as `http://localhost:8080`. */
  url: string
  /** A bearer key, sent as `Authorization: Bearer <key>` when given. */
  apiKey?: string | undefined
  /**
   * How long to wait for each answer, in milliseconds.
   * @default 10000
   */
  timeoutMs?: number
  /** The `User-Agent` to send. */
  userAgent?: string
}

/** A successful answer: its parsed JSON body and its headers. */
export interface ApiResponse<Body> {
  body: Body
  headers: Headers
}

/** An answer of any status, as {@link ApiClient.exchange} resolves it. */
export interface RawResponse {
  status: number
  /** The parsed JSON body; `undefined` when the body is not JSON. */
  body: unknown
  /** The body as text, such as the Prometheus form of `/metrics`. */
  text: string
  headers: Headers
}

/** What {@link ApiClient.exchange} sends. */
export interface RawRequest {
  method: 'get' | 'post'
  /** A body to send as JSON. */
  json?: unknown
  /** A body already serialized as JSON, sent byte for byte. */
  body?: string
  headers?: Record<string, string>
  searchParams?: Record<string, string | number>
}

/**
 * A thin client for Parley's HTTP API. It never retries (a CLI user can run
 * the command again, and a retried send without an idempotency key could
 * send twice), and it turns every failure into a `CliError` subclass.
 */
export class ApiClient {
  readonly #url: string
  readonly #timeoutMs: number
  readonly #http: KyInstance

  constructor(options: ApiClientOptions) {
    this.#url = options.url
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#http = ky.create({
      prefixUrl: options.url,
      retry: 0,
      throwHttpErrors: false,
      timeout: this.#timeoutMs,
      headers: requestHeaders(options),
    })
  }

  /** Sends `body` as JSON to `path` (relative to the base URL). */
  post<Body>(
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<Body>> {
    return this.#request(path, { method: 'post', json: body, headers })
  }

  /**
   * Sends a JSON document that is already serialized, byte for byte as
   * given: for a body that a signature must cover exactly, such as a
   * webhook's.
   */
  postSerialized<Body>(
    path: string,
    json: string,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<Body>> {
    return this.#request(path, {
      method: 'post',
      body: json,
      headers: { 'content-type': 'application/json', ...headers },
    })
  }

  /** Reads `path` (relative to the base URL) with a query string. */
  get<Body>(
    path: string,
    searchParams: Record<string, string | number> = {},
  ): Promise<ApiResponse<Body>> {
    return this.#request(path, { method: 'get', searchParams })
  }

  /**
   * Sends one request and resolves its answer whatever the status, for
   * callers that count statuses themselves (`parley load`). Rejects only
   * when no answer came: `ServerUnreachableError` or `ServerTimeoutError`.
   */
  async exchange(path: string, request: RawRequest): Promise<RawResponse> {
    const { body, headers = {}, ...rest } = request
    // Never `headers: undefined`: ky would drop the client's own headers
    // (the Authorization among them) instead of keeping them.
    const options: Options =
      body === undefined
        ? { ...rest, headers }
        : {
            ...rest,
            body,
            headers: { 'content-type': 'application/json', ...headers },
          }
    const response = await this.#fetch(path, options)
    const text = await response.text()
    return {
      status: response.status,
      body: parseJson(text),
      text,
      headers: response.headers,
    }
  }

  async #request<Body>(
    path: string,
    options: Options,
  ): Promise<ApiResponse<Body>> {
    const response = await this.#fetch(path, options)
    const body = await readJson(response)

    if (!response.ok) throw this.#toError(response, body)
    if (body === undefined) {
      throw new UnexpectedResponseError(this.#url, response.status, 'no JSON')
    }
    return { body: body as Body, headers: response.headers }
  }

  async #fetch(path: string, options: Options): Promise<Response> {
    try {
      return await this.#http(path, withoutUndefined(options))
    } catch (error) {
      if (isTimeoutError(error)) {
        throw new ServerTimeoutError(this.#url, this.#timeoutMs)
      }
      // fetch rejects with a TypeError when no connection could be made.
      if (!(error instanceof TypeError)) throw error
      const reason = failureReason(error)
      if (reason === 'bad port') throw new BlockedPortError(this.#url)
      throw new ServerUnreachableError(this.#url, reason)
    }
  }

  #toError(response: Response, body: unknown): Error {
    if (!isErrorBody(body)) {
      const reason = `${response.status} ${response.statusText}`.trim()
      return new UnexpectedResponseError(this.#url, response.status, reason)
    }
    return new ApiError(
      response.status,
      body.code,
      body.message,
      typeof body.request_id === 'string' ? body.request_id : undefined,
      readDetails(body.details),
      retryAfterSeconds(response.headers),
    )
  }
}

// ky treats an option given as `undefined` as set: `headers: undefined`
// replaces the instance's headers. Every request goes through here.
function withoutUndefined(options: Options): Options {
  return Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as Options
}

/**
 * The `Retry-After` header in whole seconds, when it is a number of
 * seconds (Parley sends seconds, never an HTTP date).
 */
export function retryAfterSeconds(headers: Headers): number | undefined {
  const value = headers.get('retry-after')?.trim() ?? ''
  return /^\d+$/.test(value) ? Number(value) : undefined
}

function requestHeaders(options: ApiClientOptions): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (options.userAgent !== undefined) {
    headers['user-agent'] = options.userAgent
  }
  if (options.apiKey !== undefined && options.apiKey !== '') {
    headers.authorization = `Bearer ${options.apiKey}`
  }
  return headers
}

async function readJson(response: Response): Promise<unknown> {
  return parseJson(await response.text())
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

interface ErrorBody {
  code: string
  message: string
  request_id?: unknown
  details?: unknown
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== 'object' || body === null) return false
  const { code, message } = body as Record<string, unknown>
  return typeof code === 'string' && typeof message === 'string'
}

// `details` names each bad field. Accept both a list of `{field, message}`
// and an object of field -> message, and skip anything else rather than
// hide the error behind a parsing failure.
function readDetails(details: unknown): ErrorDetail[] {
  if (Array.isArray(details)) return details.flatMap(readDetail)
  if (typeof details !== 'object' || details === null) return []
  return Object.entries(details).map(([field, message]) => ({
    field,
    message: String(message),
  }))
}

function readDetail(detail: unknown): ErrorDetail[] {
  if (typeof detail !== 'object' || detail === null) return []
  const { field, message } = detail as Record<string, unknown>
  if (typeof field !== 'string') return []
  return [{ field, message: String(message ?? '') }]
}

// The TypeError's `cause` is the system error; when a host name resolves to
// several addresses it is an AggregateError holding one per address. Some
// causes have no code, such as fetch's refusal of a blocked port.
function failureReason(error: TypeError): string | undefined {
  const cause = error.cause as
    { code?: unknown; message?: unknown; errors?: unknown[] } | undefined
  const first = cause?.errors?.[0] as { code?: unknown } | undefined
  const candidates = [cause?.code, first?.code, cause?.message]
  return candidates.find(
    (value) => typeof value === 'string' && value !== '',
  ) as string | undefined
}
