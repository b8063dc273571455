/**
 * Several server processes on one Postgres schema (DESIGN sections 3 and
 * 6): work is neither lost nor doubled when one instance is SIGKILLed
 * mid-run, the per-sender limit holds across instances with the database
 * store, an idempotency key is honoured across instances, and the process
 * time zone changes no instant.
 */
import {
  MOCK_PROVIDER_CREDENTIALS,
  type MockProviderServer,
  startMockProviderServer,
} from '@parley/server'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get } from './helpers/http.js'
import {
  allConversations,
  allMessages,
  mapLimit,
  readMetrics,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import { type FreshSchema, freshSchema } from './helpers/postgres.js'
import { postgresSkipReason } from './helpers/postgres-required.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

const skip = await postgresSkipReason('the multi-instance tests')

const schemas: FreshSchema[] = []
const pools: pg.Pool[] = []

afterAll(async () => {
  await cleanUpServers()
  for (const pool of pools) await pool.end()
  for (const schema of schemas) await schema.drop()
})

/** A fresh schema and a small pool whose search_path is that schema. */
async function database(): Promise<{ schema: FreshSchema; sql: pg.Pool }> {
  const schema = await freshSchema()
  schemas.push(schema)
  const sql = new pg.Pool({
    connectionString: schema.url,
    options: `-c search_path=${schema.name}`,
    max: 2,
  })
  sql.on('error', () => undefined)
  pools.push(sql)
  return { schema, sql }
}

/** Rows as `{ key: count }`. */
async function countBy(
  sql: pg.Pool,
  query: string,
): Promise<Record<string, number>> {
  const { rows } = await sql.query<{ key: string; n: string }>(query)
  return Object.fromEntries(rows.map((row) => [row.key, Number(row.n)]))
}

/** What a request ended with: an HTTP answer or a connection failure. */
type Attempt =
  { readonly status: number; readonly body: any } | { readonly failure: string }

/** POSTs JSON; a connection failure resolves instead of throwing. */
async function attempt(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Attempt> {
  try {
    const response = await fetch(new URL(path, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : null }
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause
    return { failure: cause?.code ?? String(error) }
  }
}

// The request never reached a server: it may go to another one.
function refused(result: Attempt): boolean {
  return 'failure' in result && result.failure === 'ECONNREFUSED'
}

describe.skipIf(skip !== undefined)(
  'two servers on one Postgres schema, one SIGKILLed mid-run and restarted',
  () => {
    const SENDS = 2000
    const WEBHOOKS = 2000
    const DISPATCH_CONCURRENCY = 16
    let mock: MockProviderServer
    let sql: pg.Pool
    let env: Record<string, string>
    // The two instances; the second is replaced when it restarts.
    const servers: ServerProcess[] = []

    beforeAll(async () => {
      const db = await database()
      sql = db.sql
      mock = await startMockProviderServer({ maxRecordedRequests: 50_000 })
      env = {
        DATABASE_URL: db.schema.databaseUrl,
        API_DB_POOL_MAX: '6',
        API_SMS_PROVIDERS: 'twilio',
        TWILIO_BASE_URL: mock.url,
        TWILIO_ACCOUNT_SID: MOCK_PROVIDER_CREDENTIALS.accountSid,
        TWILIO_AUTH_TOKEN: MOCK_PROVIDER_CREDENTIALS.authToken,
        // Leases short enough that what the killed instance held is taken
        // again within the test, still longer than a provider call.
        API_PROVIDER_TIMEOUT_MS: '2000',
        API_WORKER_CLAIM_TIMEOUT_SECS: '5',
        API_DISPATCH_CONCURRENCY: String(DISPATCH_CONCURRENCY),
      }
      servers.push(await startServerProcess({ env }))
      servers.push(await startServerProcess({ env }))
    })

    afterAll(async () => {
      await mock?.close()
    })

    it('stores every accepted send once and sends it, makes one message of every distinct webhook, and leaves no job behind', async () => {
      const started = performance.now()
      const ops = operations(SENDS, WEBHOOKS)
      const outcome: Outcome = { accepted: new Map(), unknown: [] }
      let done = 0
      let restarting: Promise<void> | undefined

      await mapLimit(ops, 24, async (op) => {
        await run(op, outcome)
        done += 1
        // A third of the way in, kill the second instance outright and
        // start it again on the same database.
        if (done === Math.floor(ops.length / 3)) restarting = killAndRestart()
      })
      await restarting
      const loadMs = performance.now() - started

      await settled(sql, WEBHOOKS)
      const ids = await checkStoredOnce(outcome)
      await checkSent(ids.length)
      const report = checkProviderCalls(ids)
      await checkInbound(WEBHOOKS)
      const perInstance = await Promise.all(servers.map(instanceCounts))
      // Both instances worked on the queues after the restart.
      for (const counts of perInstance) {
        expect(
          counts.dispatch_success + counts.worker_processed,
        ).toBeGreaterThan(0)
      }
      console.info(
        `multi-instance: ${ops.length} requests in ${Math.round(loadMs)} ms, ` +
          `${outcome.accepted.size} sends accepted, ${outcome.unknown.length} cut off by the kill, ` +
          `${report.providerCalls} provider calls, ${report.repeats} repeated after the kill ` +
          `(${report.duplicateAttempts} with an attempt number seen before); ` +
          `after the restart: ${JSON.stringify(perInstance)}; ` +
          `done in ${Math.round(performance.now() - started)} ms`,
      )
    }, 150_000)

    /** What became of the sends: answered with an id, or cut off. */
    interface Outcome {
      /** Body of each send answered 202, and the id it was given. */
      readonly accepted: Map<string, string>
      /** Bodies of sends whose connection broke before an answer. */
      readonly unknown: string[]
    }

    /** The `n`th send or webhook, first posted to `servers[target]`. */
    interface Op {
      readonly kind: 'send' | 'webhook'
      readonly n: number
      readonly target: number
    }

    // Sends and webhooks interleaved, each to one instance in turn; half of
    // the webhooks are delivered a second time, later, to the other one.
    function operations(sends: number, webhooks: number): Op[] {
      const ops: Op[] = []
      for (let n = 0; n < Math.max(sends, webhooks); n += 1) {
        if (n < sends) ops.push({ kind: 'send', n, target: n % 2 })
        if (n < webhooks) ops.push({ kind: 'webhook', n, target: (n + 1) % 2 })
        const again = n - 50
        if (again >= 0 && again < webhooks / 2) {
          ops.push({ kind: 'webhook', n: again, target: again % 2 })
        }
      }
      return ops
    }

    async function run(op: Op, outcome: Outcome): Promise<void> {
      const body = `${op.kind}-${op.n}`
      const path =
        op.kind === 'send' ? '/api/messages/sms' : '/api/webhooks/sms'
      const payload =
        op.kind === 'send'
          ? smsSend({
              from: phone(op.n % 50),
              to: phone(100 + (op.n % 7)),
              body,
            })
          : smsWebhook({
              from: phone(200 + (op.n % 40)),
              to: phone(op.n % 50),
              body,
              messaging_provider_id: `SM-multi-${op.n}`,
            })
      const result = await deliver(op.target, path, payload, op.kind)
      if (op.kind === 'webhook') return
      if ('failure' in result) outcome.unknown.push(body)
      else outcome.accepted.set(body, result.body.id)
    }

    // A load balancer's view: a refused connection goes to the other
    // instance. A webhook cut off mid-request is delivered again (as a
    // provider would); a send cut off may or may not have been stored.
    async function deliver(
      target: number,
      path: string,
      payload: unknown,
      kind: Op['kind'],
    ): Promise<Attempt> {
      for (let tries = 0; tries < 50; tries += 1) {
        const server = servers[(target + tries) % 2]!
        const result = await attempt(server.url, path, payload)
        if ('status' in result) {
          expect(result.status, JSON.stringify(result.body)).toBe(202)
          return result
        }
        if (kind === 'send' && !refused(result)) return result
        if (tries % 2 === 1) await new Promise((r) => setTimeout(r, 50))
      }
      throw new Error(`no instance took ${path}`)
    }

    async function killAndRestart(): Promise<void> {
      const victim = servers[1]!
      victim.kill('SIGKILL')
      await victim.waitForExit()
      servers[1] = await startServerProcess({ env })
    }

    // Every accepted send is stored once, under the id it was answered
    // with; a send cut off by the kill is stored at most once. Resolves
    // the ids of the stored sends.
    async function checkStoredOnce(outcome: Outcome): Promise<string[]> {
      const { rows } = await sql.query<{ id: string; body: string }>(
        `select id, body from messages where direction = 'outbound'`,
      )
      const copies = new Map<string, number>()
      const idOf = new Map<string, string>()
      for (const { id, body } of rows) {
        copies.set(body, (copies.get(body) ?? 0) + 1)
        idOf.set(body, String(id))
      }

      expect(outcome.accepted.size + outcome.unknown.length).toBe(SENDS)
      for (const [body, id] of outcome.accepted) {
        expect(copies.get(body), body).toBe(1)
        expect(idOf.get(body), body).toBe(id)
      }
      for (const body of outcome.unknown) {
        expect(copies.get(body) ?? 0, body).toBeLessThanOrEqual(1)
      }
      expect(rows.length).toBe(copies.size)
      return rows.map((row) => String(row.id))
    }

    // Every stored send ended `sent`, its job done.
    async function checkSent(count: number): Promise<void> {
      const statuses = await countBy(
        sql,
        `select status as key, count(*) as n from messages
          where direction = 'outbound' group by status`,
      )
      const jobs = await countBy(
        sql,
        `select state as key, count(*) as n from dispatch_jobs group by state`,
      )
      expect(statuses).toEqual({ sent: count })
      expect(jobs).toEqual({ done: count })
    }

    // Every stored send reached the provider; only calls the killed
    // instance had in flight (at most its dispatch concurrency) were made
    // again.
    function checkProviderCalls(ids: readonly string[]) {
      const requests = mock.requests()
      const calls = new Map<string, number>()
      for (const { messageId } of requests) {
        calls.set(String(messageId), (calls.get(String(messageId)) ?? 0) + 1)
      }
      expect([...calls.keys()].sort()).toEqual([...ids].sort())
      const repeats = requests.length - ids.length
      expect(repeats).toBeLessThanOrEqual(DISPATCH_CONCURRENCY)
      return {
        providerCalls: requests.length,
        repeats,
        duplicateAttempts: mock.duplicates(),
      }
    }

    async function checkInbound(webhooks: number): Promise<void> {
      const messages = await countBy(
        sql,
        `select provider_message_id as key, count(*) as n from messages
          where direction = 'inbound' group by provider_message_id`,
      )
      expect(Object.keys(messages)).toHaveLength(webhooks)
      expect(Object.values(messages).every((n) => n === 1)).toBe(true)

      const events = await countBy(
        sql,
        `select state as key, count(*) as n from inbound_events group by state`,
      )
      expect(events).toEqual({ done: webhooks })
      const unlinked = await sql.query(
        'select id from inbound_events where message_id is null',
      )
      expect(unlinked.rows).toEqual([])
      const held = await sql.query(
        `select id from dispatch_jobs
          where claim_token is not null or locked_until is not null
         union all
         select id from inbound_events
          where claim_token is not null or locked_until is not null`,
      )
      expect(held.rows).toEqual([])
    }
  },
)

/** Waits until both queues hold only finished rows. */
async function settled(sql: pg.Pool, webhooks: number): Promise<void> {
  await pollUntil(
    async () => {
      const { rows } = await sql.query<{ open: string; events: string }>(
        `select
           (select count(*) from dispatch_jobs where state <> 'done')
         + (select count(*) from inbound_events where state <> 'done') as open,
           (select count(*) from inbound_events) as events`,
      )
      const row = rows[0]!
      return Number(row.open) === 0 && Number(row.events) === webhooks
    },
    { timeoutMs: 60_000, intervalMs: 200, description: 'queues drained' },
  )
}

/** What one instance's /metrics says it did. */
async function instanceCounts(server: ServerProcess) {
  const metrics = await readMetrics(server.url)
  return {
    port: server.port,
    dispatch_success: metrics.dispatch_success,
    worker_processed: metrics.worker_processed,
  }
}

/** A distinct US number for each `n` below 10,000. */
function phone(n: number): string {
  return `+1804555${String(n).padStart(4, '0')}`
}

describe.skipIf(skip !== undefined)(
  'a TZ=America/Chicago and a TZ=UTC server with the database rate-limit store',
  () => {
    let sql: pg.Pool
    let chicago: ServerProcess
    let utc: ServerProcess

    beforeAll(async () => {
      const db = await database()
      sql = db.sql
      const env = {
        DATABASE_URL: db.schema.databaseUrl,
        API_DB_POOL_MAX: '4',
        API_RATE_LIMIT_STORE: 'database',
        API_RATE_LIMIT_PER_SENDER_PER_MIN: '60',
      }
      ;[chicago, utc] = await Promise.all([
        startServerProcess({ env: { ...env, TZ: 'America/Chicago' } }),
        startServerProcess({ env: { ...env, TZ: 'UTC' } }),
      ])
    })

    it('accepts no more than 60 plus one per elapsed second of 200 sends from one sender spread over both', async () => {
      const sender = '+18045559999'
      const instances = [chicago, utc]

      const started = performance.now()
      const results = await mapLimit(
        Array.from({ length: 200 }, (_, i) => i),
        10,
        (i) =>
          attempt(
            instances[i % 2]!.url,
            '/api/messages/sms',
            smsSend({ from: sender, to: phone(i), body: `limited ${i}` }),
          ),
      )
      const elapsedMs = performance.now() - started

      const statuses = results.map((r) =>
        'status' in r ? r.status : r.failure,
      )
      const accepted = statuses.filter((s) => s === 202).length
      expect(statuses.filter((s) => s !== 202 && s !== 429)).toEqual([])
      console.info(
        `multi-instance: ${accepted} of 200 sends from one sender accepted ` +
          `in ${Math.round(elapsedMs)} ms over two instances (limit 60/min)`,
      )
      expect(accepted).toBeGreaterThanOrEqual(60)
      expect(accepted).toBeLessThanOrEqual(60 + Math.floor(elapsedMs / 1000))
      const stored = await sql.query<{ n: string }>(
        `select count(*) as n from messages where from_participant = $1`,
        [sender],
      )
      expect(Number(stored.rows[0]!.n)).toBe(accepted)
    })

    it('makes one message of one Idempotency-Key sent to both instances at once', async () => {
      const pairs = new Map<string, number>()
      for (let k = 0; k < 20; k += 1) {
        const request = smsSend({
          from: phone(3000 + k),
          body: `idempotent ${k}`,
        })
        const headers = { 'Idempotency-Key': `multi-instance-${k}` }
        const answers = await Promise.all(
          [chicago, utc].map((server) =>
            attempt(server.url, '/api/messages/sms', request, headers),
          ),
        )

        const statuses = answers.map((a) => ('status' in a ? a.status : 0))
        expect(
          statuses.every((s) => s === 202 || s === 409),
          `${statuses}`,
        ).toBe(true)
        const ids = answers.flatMap((a) =>
          'status' in a && a.status === 202 ? [a.body.id] : [],
        )
        expect(ids.length).toBeGreaterThan(0)
        expect(new Set(ids).size).toBe(1)
        const stored = await sql.query(
          `select id from messages where body = $1`,
          [`idempotent ${k}`],
        )
        expect(stored.rows.map((row) => String(row.id))).toEqual([ids[0]])
        const pair = [...statuses].sort().join('+')
        pairs.set(pair, (pairs.get(pair) ?? 0) + 1)
      }
      console.info(
        `multi-instance: one key sent to both instances at once, 20 times: ` +
          `${JSON.stringify(Object.fromEntries(pairs))}, one message each`,
      )
    })

    it('lists the same instants from both, whatever the time zone they were written in', async () => {
      const instants = [
        '2024-11-03T06:30:00.000Z', // 01:30 CDT, just before Chicago's fall back
        '2024-11-03T07:30:00.000Z', // 01:30 CST, the repeated hour
        '2024-03-10T08:30:00.000Z', // 03:30 CDT, just after spring forward
        '2024-12-31T23:59:59.999Z',
      ]
      const written = [
        '2024-11-03T01:30:00-05:00',
        '2024-11-03T01:30:00-06:00',
        '2024-03-10T08:30:00Z',
        '2024-12-31T17:59:59.999-06:00',
      ]
      for (const [i, timestamp] of written.entries()) {
        const server = i % 2 === 0 ? chicago : utc
        const sent = await attempt(
          server.url,
          '/api/messages/sms',
          smsSend({
            from: '+12025550150',
            to: '+13125550100',
            body: `tz ${i}`,
            timestamp,
          }),
        )
        expect('status' in sent && sent.status).toBe(202)
        const received = await attempt(
          (i % 2 === 0 ? utc : chicago).url,
          '/api/webhooks/sms',
          smsWebhook({
            from: '+13125550100',
            to: '+12025550150',
            body: `tz reply ${i}`,
            timestamp,
            messaging_provider_id: `SM-tz-${i}`,
          }),
        )
        expect('status' in received && received.status).toBe(202)
      }
      // Compared once nothing moves: every send sent, every event threaded.
      await settled(sql, 4)
      const conversation = (await allConversations(utc.url)).find((c) =>
        [c.participant_a, c.participant_b].includes('+12025550150'),
      )
      expect(conversation?.message_count).toBe(8)

      const views = await Promise.all(
        [chicago, utc].map(async (server) => ({
          conversations: await allConversations(server.url),
          messages: await allMessages(server.url, conversation!.id),
        })),
      )

      expect(views[0]).toEqual(views[1])
      const timestamps = views[0]!.messages.map((m) => m.timestamp)
      expect([...new Set(timestamps)].sort()).toEqual([...instants].sort())
      const stored = await sql.query<{ timestamp: Date }>(
        `select timestamp from messages where body like 'tz %'`,
      )
      const storedIso = stored.rows.map((row) => row.timestamp.toISOString())
      expect([...new Set(storedIso)].sort()).toEqual([...instants].sort())
      const detail = await get(
        chicago.url,
        `/api/messages/${views[0]!.messages[0]!.id}`,
      )
      expect(detail.status).toBe(200)
    })
  },
)
