/**
 * Graceful shutdown (DESIGN section 8) of the real server process.
 */
import { afterAll, describe, expect, it } from 'vitest'
import {
  get,
  openConnection,
  post,
  type RawConnection,
} from './helpers/http.js'
import {
  expectError,
  mapLimit,
  queueStates,
  readDatabase,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const IN_FLIGHT_BODY = JSON.stringify(
  smsSend({ body: 'sent while the server was stopping' }),
)

// Starts a POST whose body has only half arrived: a request in flight.
async function startUpload(server: ServerProcess): Promise<RawConnection> {
  const connection = await openConnection(server.url)
  const half = Math.floor(IN_FLIGHT_BODY.length / 2)
  await connection.write(
    'POST /api/messages/sms HTTP/1.1\r\n' +
      `Host: 127.0.0.1:${server.port}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(IN_FLIGHT_BODY)}\r\n\r\n` +
      IN_FLIGHT_BODY.slice(0, half),
  )
  return connection
}

async function signalled(server: ServerProcess): Promise<void> {
  await pollUntil(
    () => server.logLines().some((line) => line.event === 'server.signal'),
    { timeoutMs: 5000, intervalMs: 10, description: 'server.signal logged' },
  )
}

async function busy(server: ServerProcess, count: number): Promise<void> {
  const bodies = Array.from({ length: count }, (_, i) =>
    i % 2 === 0
      ? { path: '/api/messages/sms', body: smsSend({ body: `busy ${i}` }) }
      : {
          path: '/api/webhooks/sms',
          body: smsWebhook({ messaging_provider_id: `SM-busy-${i}` }),
        },
  )
  const responses = await mapLimit(bodies, 8, (item) =>
    post(server.url, item.path, item.body),
  )
  for (const response of responses) expect(response.status).toBe(202)
}

describe('shutdown on SIGTERM', () => {
  it('finishes requests in flight, answers new ones 503 (or refuses them), releases claimed work and exits 0', async () => {
    const server = await startServerProcess({
      env: { API_DISPATCH_CONCURRENCY: '1', API_WORKER_BATCH_SIZE: '1' },
    })
    const upload = await startUpload(server)
    // A request whose head is still arriving when the signal comes: once
    // complete, it is a new request.
    const late = await openConnection(server.url)
    await late.write(
      `GET /api/conversations HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n`,
    )
    await busy(server, 120)

    const signalledAt = performance.now()
    server.kill('SIGTERM')
    await signalled(server)

    await late.write('Accept: application/json\r\n\r\n')
    const refused = await late.response()
    expectError(refused, 503, 'unavailable')
    expect(refused.headers.connection).toBe('close')
    expect(refused.headers['retry-after']).toMatch(/^[0-9]+$/)

    const fresh = await post(server.url, '/api/messages/sms', smsSend()).then(
      (response) => response.status,
      () => 'refused' as const,
    )
    expect([503, 'refused']).toContain(fresh)

    // The upload still holds the listener open: liveness and metrics keep
    // answering, readiness says the instance is going away.
    expect((await get(server.url, '/healthz')).status).toBe(200)
    expect((await get(server.url, '/metrics')).status).toBe(200)
    expectError(await get(server.url, '/readyz'), 503, 'unavailable')

    await upload.write(
      IN_FLIGHT_BODY.slice(Math.floor(IN_FLIGHT_BODY.length / 2)),
    )
    const finished = await upload.response()
    expect(finished.status, finished.text).toBe(202)
    expect(finished.body).toMatchObject({ status: 'accepted' })
    // Finished during shutdown: the client must not reuse the connection,
    // which closes with the listener.
    expect(finished.headers.connection).toBe('close')

    expect(await server.waitForExit()).toBe(0)
    const shutdownMs = performance.now() - signalledAt
    console.log(`shutdown: SIGTERM to exit took ${shutdownMs.toFixed(0)} ms`)
    expect(server.logLines().at(-1)).toMatchObject({
      event: 'server.shutdown_finished',
      exit_code: 0,
    })

    readDatabase(server.databasePath, (db) => {
      const dispatch = queueStates(db, 'dispatch_jobs')
      const inbound = queueStates(db, 'inbound_events')
      expect(dispatch.running ?? 0).toBe(0)
      expect(inbound.running ?? 0).toBe(0)
      const held = db
        .prepare(
          'select count(*) as n from dispatch_jobs where claim_token is not null or locked_until is not null',
        )
        .get() as { n: number }
      expect(held.n).toBe(0)
      const stored = db
        .prepare('select status from messages where id = ?')
        .get(Number(finished.body.id)) as { status: string } | undefined
      expect(stored).toBeDefined()
    })
  })

  it('cuts off a request still unfinished when the grace period ends, and exits 1', async () => {
    const server = await startServerProcess({
      env: { API_SHUTDOWN_GRACE_SECS: '1', API_BODY_TIMEOUT_MS: '60000' },
    })
    const upload = await startUpload(server)
    await new Promise((resolve) => setTimeout(resolve, 100))
    server.kill('SIGTERM')

    expect(await server.waitForExit(10_000)).toBe(1)
    expect(server.logLines().at(-1)).toMatchObject({
      event: 'server.shutdown_finished',
      exit_code: 1,
      requests_done: false,
    })
    await pollUntil(() => upload.ended, { timeoutMs: 2000 })
  })

  it('also shuts down gracefully on SIGINT', async () => {
    const server = await startServerProcess()
    expect(
      (await post(server.url, '/api/messages/sms', smsSend())).status,
    ).toBe(202)
    server.kill('SIGINT')
    expect(await server.waitForExit()).toBe(0)
  })
})
