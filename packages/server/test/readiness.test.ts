/**
 * Readiness means what it says (DESIGN sections 4 and 8): `/readyz` goes
 * 503 when the database stops answering and 200 again when it returns,
 * and the workers deliver again afterwards. Postgres is reached through a
 * proxy of the test's own, which it stalls and cuts; SQLite through a
 * handle that fails on demand. Nothing here touches the shared Postgres.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ParleyDatabase, silentLogger } from '@parley/core'
import { openSqlite } from '@parley/core/sqlite'
import { loadConfig, type RunningServer, startServer } from '@parley/server'
import type Database from 'better-sqlite3'
import { sql } from 'kysely'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { get, post } from '../../../test/helpers/http.js'
import { expectError, smsSend } from '../../../test/helpers/parley.js'
import { pollUntil } from '../../../test/helpers/poll.js'
import {
  dropProcessDatabase,
  freshSchema,
  POSTGRES_URL,
  processDatabase,
} from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'
import {
  startTcpProxy,
  type TcpProxy,
} from '../../../test/helpers/tcp-proxy.js'

const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const ENV = {
  PORT: '0',
  HOST: '127.0.0.1',
  API_WORKER_POLL_MS: '50',
  API_RATE_LIMIT_PER_IP_PER_MIN: '1000000',
  API_RATE_LIMIT_PER_SENDER_PER_MIN: '1000000',
}

async function serve(
  env: Record<string, string>,
  database?: ParleyDatabase,
): Promise<RunningServer> {
  const config = loadConfig({ ...ENV, ...env })
  const server = await startServer({ config, logger: silentLogger, database })
  cleanups.push(() => server.shutdown())
  return server
}

async function expectReady(server: RunningServer): Promise<void> {
  const response = await get(server.url, '/readyz')
  expect(response.status, response.text).toBe(200)
  expect(response.body).toEqual({ status: 'ready' })
}

async function expectNotReady(
  server: RunningServer,
  reason: RegExp,
): Promise<void> {
  const response = await get(server.url, '/readyz')
  expectError(response, 503, 'unavailable')
  expect(response.headers.get('retry-after')).toMatch(/^[0-9]+$/)
  expect(response.body.message).toMatch(reason)
  // Liveness does not depend on the database.
  expect((await get(server.url, '/healthz')).status).toBe(200)
}

async function readyAgain(server: RunningServer): Promise<void> {
  await pollUntil(
    async () => (await get(server.url, '/readyz')).status === 200,
    { timeoutMs: 15_000, description: 'readyz 200 again' },
  )
}

// A send accepted now is delivered: the workers claim and settle again.
async function expectDelivers(server: RunningServer): Promise<void> {
  const accepted = await post(server.url, '/api/messages/sms', smsSend())
  expect(accepted.status, accepted.text).toBe(202)
  await pollUntil(
    async () => {
      const message = await get(server.url, `/api/messages/${accepted.body.id}`)
      return message.body.status === 'sent'
    },
    { timeoutMs: 15_000, description: 'the message is sent' },
  )
}

const postgresSkip = await postgresSkipReason('the readiness tests on Postgres')

describe.skipIf(postgresSkip !== undefined)(
  'readiness on Postgres behind a proxy',
  () => {
    afterAll(() => dropProcessDatabase(POSTGRES_URL))

    async function throughProxy(): Promise<{
      server: RunningServer
      proxy: TcpProxy
    }> {
      const database = new URL(await processDatabase(POSTGRES_URL))
      const schema = await freshSchema(database.toString())
      cleanups.push(() => schema.drop())
      const proxy = await startTcpProxy({
        host: database.hostname,
        port: Number(database.port || 5432),
      })
      cleanups.push(() => proxy.close())
      const url = new URL(schema.databaseUrl)
      url.hostname = '127.0.0.1'
      url.port = String(proxy.port)
      const server = await serve({ DATABASE_URL: url.toString() })
      return { server, proxy }
    }

    it('answers 503 within the timeout while the database stalls, and 200 once it answers again', async () => {
      const { server, proxy } = await throughProxy()
      await expectReady(server)

      proxy.stall()
      const started = performance.now()
      await expectNotReady(server, /no answer within 2000 ms/)
      const waitedMs = performance.now() - started
      expect(waitedMs).toBeLessThan(4000)
      console.log(
        `readiness: a stalled database answered 503 after ${waitedMs.toFixed(0)} ms`,
      )

      proxy.restore()
      await readyAgain(server)
      await expectDelivers(server)
    })

    it('answers 503 while every connection is cut, refuses sends, and recovers when the path returns', async () => {
      const { server, proxy } = await throughProxy()
      await expectReady(server)

      proxy.cut()
      await expectNotReady(server, /^not ready: database: /)
      expectError(
        await post(server.url, '/api/messages/sms', smsSend()),
        503,
        'unavailable',
      )

      proxy.restore()
      await readyAgain(server)
      await expectDelivers(server)
    })
  },
)

/** Switches a better-sqlite3 handle's statements to failing and back. */
interface FaultSwitch {
  failing: boolean
}

// Every statement run while `failing` throws SQLite's I/O error, whenever
// it was prepared (the adapter keeps prepared statements for reuse).
// Rollbacks still work, as SQLite itself rolls back after an I/O error.
function failingOnDemand(
  database: Database.Database,
  faults: FaultSwitch,
): Database.Database {
  const fail = (source: string) => {
    if (faults.failing && !/^\s*rollback/i.test(source)) {
      throw Object.assign(new Error('disk I/O error'), {
        code: 'SQLITE_IOERR',
      })
    }
  }
  return new Proxy(database, {
    get(target, property) {
      if (property === 'prepare') {
        return (source: string) => {
          fail(source)
          return failingStatement(target.prepare(source), source, fail)
        }
      }
      return bound(target, property)
    },
  })
}

const RUNS = new Set<PropertyKey>(['run', 'get', 'all', 'iterate'])

function failingStatement(
  statement: Database.Statement,
  source: string,
  fail: (source: string) => void,
): Database.Statement {
  return new Proxy(statement, {
    get(target, property) {
      const value = bound(target, property)
      if (!RUNS.has(property) || typeof value !== 'function') return value
      return (...args: unknown[]) => {
        fail(source)
        return (value as (...a: unknown[]) => unknown)(...args)
      }
    },
  })
}

function bound(target: object, property: PropertyKey): unknown {
  const value = Reflect.get(target, property, target) as unknown
  return typeof value === 'function' ? value.bind(target) : value
}

describe('readiness on SQLite with a failing driver', () => {
  async function withFaults(): Promise<{
    server: RunningServer
    faults: FaultSwitch
    db: ParleyDatabase
  }> {
    const dir = await mkdtemp(join(tmpdir(), 'parley-readiness-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const faults: FaultSwitch = { failing: false }
    const filename = join(dir, 'parley.db')
    const db = openSqlite({
      filename,
      wrapDatabase: (database) => failingOnDemand(database, faults),
    })
    cleanups.push(() => db.close())
    const server = await serve({ DATABASE_URL: filename }, db)
    return { server, faults, db }
  }

  it('answers 503 while the database fails, and 200 and delivers once it works again', async () => {
    const { server, faults } = await withFaults()
    await expectReady(server)

    faults.failing = true
    await expectNotReady(server, /^not ready: database: disk I\/O error$/)
    expectError(
      await post(server.url, '/api/messages/sms', smsSend()),
      503,
      'unavailable',
    )

    faults.failing = false
    await expectReady(server)
    await expectDelivers(server)
  })

  it('answers 503 while a migration is missing', async () => {
    const { server, db } = await withFaults()
    await sql`delete from parley_migrations where name = '0004_retention_indexes'`.execute(
      db.kysely,
    )

    await expectNotReady(server, /schema is not current/)
  })

  it('answers 503 once shutdown began', async () => {
    const { server } = await withFaults()
    await expectReady(server)
    const closing = server.shutdown()

    const response = await get(server.url, '/readyz').catch(() => undefined)
    if (response) expectError(response, 503, 'unavailable')
    expect(await closing).toBe(0)
  })
})
