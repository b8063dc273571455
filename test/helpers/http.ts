/**
 * Small HTTP clients for tests: JSON over `fetch`, exact requests over
 * `node:http`, and raw bytes over a socket. Every one refuses any host but
 * 127.0.0.1: tests talk only to servers they started on loopback.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect, type Socket } from 'node:net'

/** A response with its body read and, when it is JSON, parsed. */
export interface JsonResponse<T = any> {
  readonly status: number
  readonly headers: Headers
  /** The body as text ('' for HEAD). */
  readonly text: string
  /** The parsed JSON body, or undefined when there is none. */
  readonly body: T
}

/** Options of {@link request}. */
export interface RequestOptions {
  readonly method?: string
  /**
   * A string or bytes are sent as they are; anything else as JSON. With a
   * body, `Content-Type` defaults to `application/json`.
   */
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
}

/** Resolves `path` against `base`, refusing any host but 127.0.0.1. */
export function loopbackUrl(base: string, path: string): URL {
  const url = new URL(path, base)
  if (url.hostname !== '127.0.0.1') {
    throw new Error(`tests may only reach 127.0.0.1, not ${url.hostname}`)
  }
  return url
}

/** Sends one request with `fetch` and reads the whole answer. */
export async function request<T = any>(
  base: string,
  path: string,
  options: RequestOptions = {},
): Promise<JsonResponse<T>> {
  const url = loopbackUrl(base, path)
  const headers: Record<string, string> = { ...options.headers }
  const body = encodeBody(options.body)
  if (body !== undefined && !hasHeader(headers, 'content-type')) {
    headers['content-type'] = 'application/json'
  }
  const response = await fetch(url, {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
  })
  const text = await response.text()
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: parse(text),
  }
}

/** POSTs `body` (JSON unless a string or bytes) to `path`. */
export function post<T = any>(
  base: string,
  path: string,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): Promise<JsonResponse<T>> {
  return request<T>(base, path, { method: 'POST', body, headers })
}

/** GETs `path`. */
export function get<T = any>(
  base: string,
  path: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<JsonResponse<T>> {
  return request<T>(base, path, { method: 'GET', headers })
}

/** A response read by {@link rawRequest} or {@link rawExchange}. */
export interface RawResponse {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: IncomingHttpHeaders
  readonly text: string
  readonly body: any
}

/** Options of {@link rawRequest}. */
export interface RawRequestOptions {
  readonly method?: string
  /** Sent exactly as given: no default `Accept` or `Content-Type`. */
  readonly headers?: Readonly<Record<string, string | number>>
  readonly body?: string | Uint8Array
  /** Send the body with chunked encoding (no `Content-Length`). */
  readonly chunked?: boolean
}

/**
 * Sends a request with `node:http`, which (unlike `fetch`) adds no
 * `Accept` or other headers of its own besides `Host` and `Connection`.
 */
export function rawRequest(
  base: string,
  path: string,
  options: RawRequestOptions = {},
): Promise<RawResponse> {
  const url = loopbackUrl(base, path)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            body: parse(text),
          })
        })
      },
    )
    req.on('error', reject)
    if (options.body !== undefined && !options.chunked) {
      req.setHeader('Content-Length', Buffer.byteLength(options.body))
    }
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })
}

/** An open connection to a server, written to by hand. */
export interface RawConnection {
  readonly socket: Socket
  /** Writes bytes as they are. */
  write(data: string | Uint8Array): Promise<void>
  /**
   * Resolves the first complete response on the connection (by
   * `Content-Length`, or at the end of the stream). Rejects after
   * `timeoutMs`.
   */
  response(timeoutMs?: number): Promise<RawResponse>
  /** True once the server closed its side. */
  readonly ended: boolean
  close(): void
}

/** Opens a TCP connection to the server behind `base`. */
export function openConnection(base: string): Promise<RawConnection> {
  const url = loopbackUrl(base, '/')
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let received = Buffer.alloc(0)
    let ended = false
    const waiters = new Set<() => void>()
    const notify = () => {
      for (const waiter of waiters) waiter()
    }
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      notify()
    })
    socket.on('end', () => {
      ended = true
      notify()
    })
    socket.on('close', () => {
      ended = true
      notify()
    })
    socket.on('error', () => {
      ended = true
      notify()
    })
    socket.once('connect', () => {
      resolve({
        socket,
        get ended() {
          return ended
        },
        write: (data) =>
          new Promise((done, fail) =>
            socket.write(data, (error) => (error ? fail(error) : done())),
          ),
        response: (timeoutMs = 10_000) =>
          new Promise((done, fail) => {
            const check = () => {
              const parsed = parseRawResponse(received, ended)
              if (!parsed) return
              cleanup()
              done(parsed)
            }
            const timer = setTimeout(() => {
              cleanup()
              fail(
                new Error(
                  `no complete response within ${timeoutMs} ms; got ${JSON.stringify(received.toString('utf8'))}`,
                ),
              )
            }, timeoutMs)
            const cleanup = () => {
              clearTimeout(timer)
              waiters.delete(check)
            }
            waiters.add(check)
            check()
          }),
        close: () => socket.destroy(),
      })
    })
    socket.once('error', reject)
  })
}

function parseRawResponse(
  data: Buffer,
  ended: boolean,
): RawResponse | undefined {
  const end = data.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const [statusLine = '', ...lines] = data
    .subarray(0, end)
    .toString('latin1')
    .split('\r\n')
  const headers: IncomingHttpHeaders = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line
      .slice(colon + 1)
      .trim()
  }
  const rest = data.subarray(end + 4)
  const length = Number(headers['content-length'])
  if (Number.isFinite(length) && rest.length < length) return undefined
  if (!Number.isFinite(length) && !ended) return undefined
  const text = rest
    .subarray(0, Number.isFinite(length) ? length : rest.length)
    .toString('utf8')
  return {
    status: Number(statusLine.split(' ')[1]),
    headers,
    text,
    body: parse(text),
  }
}

function encodeBody(body: unknown): string | Uint8Array | undefined {
  if (body === undefined) return undefined
  if (typeof body === 'string' || body instanceof Uint8Array) return body
  return JSON.stringify(body)
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((key) => key.toLowerCase() === name)
}

function parse(text: string): any {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
