/**
 * The global breaker on the real server process (DESIGN sections 6 and
 * 7, issue 4). The test makes the database fail by adding, through its own
 * connection to the server's SQLite file, a trigger that aborts every
 * insert into `messages`; sends then fail in the backend (503
 * `unavailable`), and after `API_GLOBAL_BREAKER_THRESHOLD` of them the
 * breaker opens and answers API requests 503 without reaching the
 * database, until the trigger is gone and a trial succeeds.
 */
import { rmSync } from 'node:fs'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { get, type JsonResponse, openConnection, post } from './helpers/http.js'
import {
  expectError,
  readDatabase,
  readMetrics,
  smsSend,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

/** Runs `sql` on the server's database through a connection of our own. */
function execute(databasePath: string, sql: string): void {
  const db = new Database(databasePath, { fileMustExist: true })
  try {
    db.pragma('busy_timeout = 5000')
    db.exec(sql)
  } finally {
    db.close()
  }
}

const BREAK_INSERTS = `create trigger test_fail_inserts before insert on messages
  begin select raise(abort, 'injected failure'); end`
const MEND_INSERTS = 'drop trigger test_fail_inserts'

function storedMessages(databasePath: string): number {
  return readDatabase(
    databasePath,
    (db) =>
      (db.prepare('select count(*) as n from messages').get() as { n: number })
        .n,
  )
}

/**
 * The breaker's transitions as logged (`from->to`), once `count` of them
 * are: the log line of the last request's settlement may still be on its
 * way through the pipe when its answer arrives.
 */
async function loggedTransitions(
  server: ServerProcess,
  count: number,
): Promise<string[]> {
  const found = await pollUntil(
    () => {
      const transitions = server
        .logLines()
        .filter((line) => line.event === 'http.global_breaker_transition')
        .map((line) => `${line.from}->${line.to}`)
      return transitions.length >= count ? transitions : undefined
    },
    { timeoutMs: 2000, intervalMs: 10, description: `${count} transitions` },
  )
  return found.value
}

function expectUnavailable(response: JsonResponse): void {
  expectError(response, 503, 'unavailable')
  expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
}

describe('global breaker', () => {
  it('opens after 3 consecutive backend failures, short-circuits API requests with 503 while health and metrics answer, and closes after a successful trial', async () => {
    const server = await startServerProcess({
      env: {
        API_GLOBAL_BREAKER_THRESHOLD: '3',
        API_GLOBAL_BREAKER_OPEN_SECS: '1',
      },
    })
    const url = server.url
    const send = (i: number) =>
      post(url, '/api/messages/sms', smsSend({ body: `attempt ${i}` }))

    const healthy = await send(0)
    expect(healthy.status, healthy.text).toBe(202)
    const start = await readMetrics(url)
    expect(start.breaker_transitions).toBe(0)

    execute(server.databasePath, BREAK_INSERTS)

    // Three sends fail in the backend; none of them is short-circuited.
    const failing = [await send(1), await send(2), await send(3)]
    for (const answer of failing) {
      expectUnavailable(answer)
      expect(answer.body.message).not.toMatch(/injected|sqlite|trigger/i)
    }
    expect(storedMessages(server.databasePath)).toBe(1)
    const opened = await readMetrics(url)
    expect(opened.breaker_open).toBe(0)
    expect(opened.breaker_transitions).toBe(1)
    expect(await loggedTransitions(server, 1)).toEqual(['closed->open'])

    // Open: a read that the database would serve is refused too, and so
    // is a send; health, readiness and metrics bypass the breaker.
    const read = await get(url, '/api/conversations')
    const message = await get(url, `/api/messages/${healthy.body.id}`)
    const refusedSend = await send(4)
    // An escaped spelling of an API path is an API path to the breaker too.
    const escaped = await get(url, '/%61pi/conversations')
    for (const answer of [read, message, refusedSend, escaped]) {
      expectUnavailable(answer)
      expect(Number(answer.headers.get('retry-after'))).toBe(1)
      // A failed write says nothing that holds for every client: the
      // refusal does not repeat it.
      expect(answer.body.message).toBe(
        'the service is failing in its backend; try again later',
      )
    }
    expect((await get(url, '/healthz')).status).toBe(200)
    expect((await get(url, '/readyz')).status).toBe(200)
    expect((await get(url, '/metrics')).status).toBe(200)
    const whileOpen = await readMetrics(url)
    expect(whileOpen.breaker_open).toBe(4)
    expect(whileOpen.breaker_transitions).toBe(1)

    execute(server.databasePath, MEND_INSERTS)

    // Past the open period a trial goes through, succeeds and closes it.
    const trial = await pollUntil(
      async () => {
        const answer = await get(url, '/api/conversations')
        return answer.status === 200 ? answer : undefined
      },
      { timeoutMs: 5000, intervalMs: 100, description: 'a successful trial' },
    )
    expect(trial.value.body.meta.total).toBe(1)
    const recovered = await send(5)
    expect(recovered.status, recovered.text).toBe(202)
    expect(storedMessages(server.databasePath)).toBe(2)

    const closed = await readMetrics(url)
    expect(closed.breaker_transitions).toBeGreaterThan(
      whileOpen.breaker_transitions,
    )
    expect(closed.breaker_open).toBeGreaterThanOrEqual(whileOpen.breaker_open)
    const transitions = await loggedTransitions(
      server,
      closed.breaker_transitions,
    )
    expect(transitions).toHaveLength(closed.breaker_transitions)
    expect(transitions.at(-1)).toBe('half_open->closed')
  })

  it('repeats to every client, while open, that storage refuses writes until a restart, without saying where the file is', async () => {
    const server = await startServerProcess({
      env: {
        API_GLOBAL_BREAKER_THRESHOLD: '3',
        API_GLOBAL_BREAKER_OPEN_SECS: '60',
      },
    })
    const url = server.url
    const send = (i: number) =>
      post(url, '/api/messages/sms', smsSend({ body: `attempt ${i}` }))
    expect((await send(0)).status).toBe(202)

    rmSync(server.databasePath)
    // Readiness finds the file gone, and writes know it from then on.
    expect((await get(url, '/readyz')).status).toBe(503)

    const refused = [await send(1), await send(2), await send(3)]
    for (const answer of refused) {
      expectUnavailable(answer)
      expect(answer.body.message).toMatch(
        /^storage refuses writes until the server is restarted: /,
      )
    }
    const open = [await send(4), await get(url, '/api/conversations')]
    for (const answer of open) {
      expectUnavailable(answer)
      expect(answer.body.message).toBe(
        `the service is failing in its backend (last failure: ${refused[2]?.body.message}); try again later`,
      )
      expect(answer.body.message).not.toContain(server.databasePath)
    }
  })

  it('reopens when the trial fails, and does not count its own refusals or client errors as backend failures', async () => {
    const server = await startServerProcess({
      env: {
        API_GLOBAL_BREAKER_THRESHOLD: '3',
        API_GLOBAL_BREAKER_OPEN_SECS: '1',
      },
    })
    const url = server.url
    const send = () => post(url, '/api/messages/sms', smsSend())

    execute(server.databasePath, BREAK_INSERTS)
    // Client errors in between are neutral: they do not reset the count.
    expectUnavailable(await send())
    expectError(
      await post(url, '/api/messages/sms', { from: 'x' }),
      400,
      'validation_failed',
    )
    expectUnavailable(await send())
    expectError(await get(url, '/api/messages/999'), 404, 'not_found')
    expectUnavailable(await send())
    expect((await readMetrics(url)).breaker_transitions).toBe(1)
    expectUnavailable(await get(url, '/api/conversations'))

    // The trial is a send that still fails: the breaker opens again.
    await pollUntil(
      async () => {
        const answer = await send()
        expectUnavailable(answer)
        return !/backend/.test(answer.body.message)
      },
      { timeoutMs: 5000, intervalMs: 100, description: 'the trial send' },
    )
    const reopened = await get(url, '/api/conversations')
    expectUnavailable(reopened)
    expect(reopened.body.message).toMatch(/backend/)
    const metrics = await readMetrics(url)
    // closed->open, open->half_open, half_open->open
    expect(metrics.breaker_transitions).toBe(3)

    execute(server.databasePath, MEND_INSERTS)
    await pollUntil(
      async () => (await get(url, '/api/conversations')).status === 200,
      { timeoutMs: 5000, intervalMs: 100, description: 'recovery' },
    )
    expect((await send()).status).toBe(202)
  })

  it('does not let a trial whose client went away before its body arrived close the breaker', async () => {
    const server = await startServerProcess({
      env: {
        API_GLOBAL_BREAKER_THRESHOLD: '3',
        API_GLOBAL_BREAKER_OPEN_SECS: '1',
      },
    })
    const url = server.url
    const send = () => post(url, '/api/messages/sms', smsSend())

    execute(server.databasePath, BREAK_INSERTS)
    for (let i = 0; i < 3; i += 1) expectUnavailable(await send())
    expect(await loggedTransitions(server, 1)).toEqual(['closed->open'])

    // Past the open period, the trial is a send whose client hangs up
    // after part of the body: it never reached the database.
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const connection = await openConnection(url)
    await connection.write(
      'POST /api/messages/sms HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"from"',
    )
    await loggedTransitions(server, 2)
    connection.close()

    // Once the server has seen the hang-up, the trial slot is free again
    // and the next request is the trial (on a loaded machine that takes a
    // moment: until then sends are short-circuited). A failing send then
    // opens the breaker again.
    const { value: trial } = await pollUntil(async () => {
      const answer = await send()
      return /backend/.test(answer.body.message) ? undefined : answer
    })
    expectUnavailable(trial)
    expect(await loggedTransitions(server, 3)).toEqual([
      'closed->open',
      'open->half_open',
      'half_open->open',
    ])
  })

  it('does not let a trial that never reaches the database (the mock provider settings) close the breaker', async () => {
    const server = await startServerProcess({
      env: {
        API_GLOBAL_BREAKER_THRESHOLD: '3',
        API_GLOBAL_BREAKER_OPEN_SECS: '1',
      },
    })
    const url = server.url
    const send = () => post(url, '/api/messages/sms', smsSend())

    execute(server.databasePath, BREAK_INSERTS)
    for (let i = 0; i < 3; i += 1) expectUnavailable(await send())
    expectUnavailable(await get(url, '/api/provider/mock/config'))

    // Past the open period the in-memory settings answer, but say nothing
    // about the database: the breaker stays half-open...
    const settings = await pollUntil(
      async () => {
        const answer = await get(url, '/api/provider/mock/config')
        return answer.status === 200 ? answer : undefined
      },
      { timeoutMs: 5000, intervalMs: 100, description: 'the settings' },
    )
    expect(settings.value.body).toBeDefined()
    // ...and the next request is the trial: a send that fails opens it again.
    const trial = await send()
    expectUnavailable(trial)
    expect(trial.body.message).not.toMatch(/backend/)
    expect(await loggedTransitions(server, 3)).toEqual([
      'closed->open',
      'open->half_open',
      'half_open->open',
    ])
    expectUnavailable(await get(url, '/api/conversations'))
  })
})
