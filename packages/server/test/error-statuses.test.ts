import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  type LogFields,
  type Logger,
  NoRouteError,
  NotFoundError,
  type Parley,
  ParleyError,
  UnavailableError,
  ValidationError,
} from '@parley/core'
import { createApp, HttpError, STATUS_OF } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'

describe('STATUS_OF', () => {
  it('maps every error code of DESIGN section 4 to its status', () => {
    expect(STATUS_OF).toMatchObject({
      validation_failed: 400,
      invalid_json: 400,
      unauthorized: 401,
      not_found: 404,
      method_not_allowed: 405,
      not_acceptable: 406,
      request_timeout: 408,
      idempotency_in_progress: 409,
      payload_too_large: 413,
      unsupported_media_type: 415,
      no_route: 422,
      idempotency_key_reused: 422,
      rate_limited: 429,
      unavailable: 503,
      internal: 500,
    })
  })

  it('holds only error statuses', () => {
    for (const status of Object.values(STATUS_OF)) {
      expect(status).toBeGreaterThanOrEqual(400)
      expect(status).toBeLessThan(600)
    }
  })

  it('gives an HttpError the status of its code', () => {
    const error = new HttpError('payload_too_large', 'too big', { A: 'b' })
    expect(error.status).toBe(413)
    expect(error.headers).toEqual({ A: 'b' })
    expect(error.name).toBe('HttpError')
  })
})

// A Parley whose every call throws `failure`.
function failingParley(failure: () => unknown): Parley {
  const fail = async () => {
    throw failure()
  }
  return {
    send: fail,
    receive: fail,
    conversations: { list: fail, messages: fail },
    messages: { get: fail },
    metrics: {
      snapshot: () => {
        throw failure()
      },
    },
    readiness: fail,
    start: async () => undefined,
    stop: async () => true,
  } as unknown as Parley
}

interface Logged {
  level: string
  event: string
  fields?: LogFields
}

function recordingLogger(lines: Logged[]): Logger {
  const at =
    (level: string) =>
    (event: string, fields?: LogFields): void => {
      lines.push({ level, event, fields })
    }
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  }
}

let server: Server | undefined

afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
})

async function serve(
  parley: Parley,
  logged: Logged[] = [],
  shuttingDown = false,
): Promise<string> {
  server = createServer(
    createApp({
      parley,
      logger: recordingLogger(logged),
      maxBodyBytes: 1024,
      bodyTimeoutMs: 1000,
      isShuttingDown: () => shuttingDown,
    }),
  )
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function send(base: string): Promise<Response> {
  return fetch(`${base}/api/messages/sms`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'req-1' },
    body: '{}',
  })
}

describe('errors from core, as HTTP answers', () => {
  it.each([
    [
      'a validation error',
      () => new ValidationError([{ field: 'to', message: 'is required' }]),
      400,
      'validation_failed',
    ],
    [
      'a missing row',
      () => new NotFoundError('message', '9'),
      404,
      'not_found',
    ],
    [
      'a family without provider',
      () => new NoRouteError('sms'),
      422,
      'no_route',
    ],
    [
      'unavailable storage',
      () => new UnavailableError('storage failed'),
      503,
      'unavailable',
    ],
    [
      'a plain ParleyError',
      () => new ParleyError('not_found', 'gone'),
      404,
      'not_found',
    ],
  ])('answers %s with %i %s', async (_, failure, status, code) => {
    const base = await serve(failingParley(failure))
    const response = await send(base)
    const body = (await response.json()) as Record<string, unknown>
    expect(response.status).toBe(status)
    expect(body).toMatchObject({ code, request_id: 'req-1' })
    expect(response.headers.get('x-request-id')).toBe('req-1')
  })

  it('names each bad field of a validation error in details', async () => {
    const details = [
      { field: 'to', message: 'is required' },
      { field: 'attachments[2]', message: 'must be an http(s) URL' },
    ]
    const base = await serve(failingParley(() => new ValidationError(details)))
    const body = (await (await send(base)).json()) as Record<string, unknown>
    expect(body.details).toEqual(details)
  })

  it('asks the client to come back later when unavailable', async () => {
    const base = await serve(
      failingParley(() => new UnavailableError('storage failed')),
    )
    const response = await send(base)
    expect(response.headers.get('retry-after')).toMatch(/^[0-9]+$/)
  })

  it('answers an unexpected error 500 internal without its details, and logs them', async () => {
    const logged: Logged[] = []
    const secret = 'SQLITE_CORRUPT at /srv/secret/path.db'
    const base = await serve(
      failingParley(() => new Error(secret)),
      logged,
    )
    const response = await send(base)
    const text = await response.text()
    expect(response.status).toBe(500)
    expect(JSON.parse(text)).toMatchObject({
      code: 'internal',
      request_id: 'req-1',
    })
    expect(text).not.toContain('SQLITE')
    expect(text).not.toContain('secret')
    const error = logged.find((line) => line.event === 'http.internal_error')
    expect(error?.level).toBe('error')
    expect(error?.fields?.request_id).toBe('req-1')
    expect(String(error?.fields?.error)).toContain(secret)
  })

  it('answers 500 internal for a thrown non-error value too', async () => {
    const base = await serve(failingParley(() => 'a string'))
    expect((await send(base)).status).toBe(500)
  })

  it('answers 503 with Connection: close once shutting down, except liveness and metrics', async () => {
    const base = await serve(
      failingParley(() => new Error('unused')),
      [],
      true,
    )
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    const response = await fetch(`${base}/api/conversations`)
    expect(response.status).toBe(503)
    expect(response.headers.get('connection')).toBe('close')
    expect(response.headers.get('retry-after')).toMatch(/^[0-9]+$/)
    expect(await response.json()).toMatchObject({ code: 'unavailable' })
  })

  it('logs one line per request with method, path, status, duration and id', async () => {
    const logged: Logged[] = []
    const base = await serve(
      failingParley(() => new NotFoundError('message', '9')),
      logged,
    )
    await fetch(`${base}/api/messages/9?x=1`, {
      headers: { 'x-request-id': 'req-log' },
    })
    const lines = logged.filter((line) => line.event === 'http.request')
    expect(lines).toHaveLength(1)
    expect(lines[0]?.fields).toMatchObject({
      request_id: 'req-log',
      method: 'GET',
      path: '/api/messages/9',
      status: 404,
    })
    expect(lines[0]?.fields?.duration_ms).toEqual(expect.any(Number))
  })
})
