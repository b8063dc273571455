/**
 * Durability: every message answered 202 survives a SIGKILL, and the
 * restarted server finishes the queued work without doing any of it twice.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { post } from './helpers/http.js'
import {
  allConversations,
  emailSend,
  emailWebhook,
  mapLimit,
  queueStates,
  readDatabase,
  smsSend,
  smsWebhook,
} from './helpers/parley.js'
import { pollUntil } from './helpers/poll.js'
import { cleanUpServers, startServerProcess } from './helpers/server-process.js'

afterAll(cleanUpServers)

const SENDS = 200
const WEBHOOKS = 200
const PARALLELISM = 8

// A lease of 2 s (the provider timeout must stay a second shorter) so that
// work claimed by the killed process is taken again soon after the restart,
// and workers slow enough that the kill finds work still queued.
const ENV = {
  API_WORKER_CLAIM_TIMEOUT_SECS: '2',
  API_PROVIDER_TIMEOUT_MS: '1000',
  API_DISPATCH_CONCURRENCY: '1',
  API_WORKER_BATCH_SIZE: '1',
}

interface Job {
  readonly kind: 'send' | 'webhook'
  readonly path: string
  readonly body: Record<string, unknown>
}

// 200 sends and 200 webhooks over 20 phone pairs and 5 email pairs,
// interleaved; the webhooks carry distinct provider ids.
function buildJobs(): Job[] {
  const jobs: Job[] = []
  for (let i = 0; i < SENDS + WEBHOOKS; i += 1) {
    const n = Math.floor(i / 2)
    const kind = i % 2 === 0 ? 'send' : 'webhook'
    const email = n % 5 === 0
    const fields = {
      body: `${kind} ${n}`,
      timestamp: new Date(Date.UTC(2024, 10, 1, 12, 0, 0, i)).toISOString(),
    }
    const phone = `+1804555${String(1000 + (n % 20)).padStart(4, '0')}`
    const mail = `customer${n % 5}@customer.example`
    if (kind === 'send') {
      jobs.push({
        kind,
        path: email ? '/api/messages/email' : '/api/messages/sms',
        body: email
          ? emailSend({ ...fields, to: mail })
          : smsSend({ ...fields, to: phone }),
      })
    } else {
      jobs.push({
        kind,
        path: email ? '/api/webhooks/email' : '/api/webhooks/sms',
        body: email
          ? emailWebhook({ ...fields, from: mail, xillio_id: `xl-${n}` })
          : smsWebhook({
              ...fields,
              from: phone,
              messaging_provider_id: `SM-${n}`,
            }),
      })
    }
  }
  return jobs
}

describe('durability across SIGKILL', () => {
  it('keeps all 400 accepted messages through a SIGKILL after the last 202, and the restart finishes every job once', async () => {
    const first = await startServerProcess({ env: ENV })
    const jobs = buildJobs()
    const responses = await mapLimit(jobs, PARALLELISM, (job) =>
      post(first.url, job.path, job.body),
    )
    first.kill('SIGKILL')
    await first.waitForExit()
    expect(first.exitSignal).toBe('SIGKILL')

    for (const response of responses) {
      expect(response.status, response.text).toBe(202)
    }
    const acceptedIds = responses.flatMap((response, i) =>
      jobs[i]?.kind === 'send' ? [response.body.id as string] : [],
    )
    expect(new Set(acceptedIds).size).toBe(SENDS)
    const providerIds = jobs.flatMap((job) =>
      job.kind === 'webhook'
        ? [String(job.body.messaging_provider_id ?? job.body.xillio_id)]
        : [],
    )

    const atKill = readDatabase(first.databasePath, (db) => ({
      dispatch: queueStates(db, 'dispatch_jobs'),
      inbound: queueStates(db, 'inbound_events'),
    }))
    console.log(
      `durability: queue states right after SIGKILL: ${JSON.stringify(atKill)}`,
    )
    // Every accepted message is on disk, whatever its progress.
    expect(sum(atKill.dispatch)).toBe(SENDS)
    expect(sum(atKill.inbound)).toBe(WEBHOOKS)

    const second = await startServerProcess({
      env: ENV,
      databasePath: first.databasePath,
    })
    const { elapsedMs } = await pollUntil(
      async () => {
        const conversations = await allConversations(second.url)
        const stored = conversations.reduce(
          (total, item) => total + item.message_count,
          0,
        )
        if (stored !== SENDS + WEBHOOKS) return false
        return readDatabase(second.databasePath, (db) => {
          const dispatch = queueStates(db, 'dispatch_jobs')
          const inbound = queueStates(db, 'inbound_events')
          return dispatch.done === SENDS && inbound.done === WEBHOOKS
        })
      },
      { timeoutMs: 30_000, intervalMs: 100, description: 'recovery' },
    )
    console.log(
      `durability: the restarted server finished the work in ${elapsedMs.toFixed(0)} ms`,
    )
    expect(await second.stop()).toBe(0)

    readDatabase(second.databasePath, (db) => {
      const count = (query: string): number =>
        (db.prepare(query).get() as { n: number }).n
      expect(count('select count(*) as n from messages')).toBe(400)
      expect(
        count(
          "select count(*) as n from messages where direction = 'outbound'",
        ),
      ).toBe(SENDS)
      expect(
        count("select count(*) as n from messages where direction = 'inbound'"),
      ).toBe(WEBHOOKS)
      expect(queueStates(db, 'dispatch_jobs')).toEqual({ done: SENDS })
      expect(queueStates(db, 'inbound_events')).toEqual({ done: WEBHOOKS })
      expect(
        count('select coalesce(sum(message_count), 0) as n from conversations'),
      ).toBe(400)

      const outbound = db
        .prepare(
          "select id, status from messages where direction = 'outbound' order by id",
        )
        .all() as Array<{ id: number; status: string }>
      expect(outbound.map((row) => String(row.id)).sort()).toEqual(
        [...acceptedIds].sort(),
      )
      expect(new Set(outbound.map((row) => row.status))).toEqual(
        new Set(['sent']),
      )

      const inbound = db
        .prepare(
          "select provider_message_id as id from messages where direction = 'inbound'",
        )
        .all() as Array<{ id: string }>
      expect(inbound.map((row) => row.id).sort()).toEqual(
        [...providerIds].sort(),
      )
      expect(
        count(
          "select count(*) as n from (select provider_message_id from messages where direction = 'inbound' group by provider_message_id having count(*) > 1)",
        ),
      ).toBe(0)
      expect(
        count(
          'select count(*) as n from inbound_events where message_id is null',
        ),
      ).toBe(0)
      expect(
        count(
          'select count(*) as n from (select message_id from inbound_events group by message_id having count(*) > 1)',
        ),
      ).toBe(0)
    })
  })
})

function sum(states: Record<string, number>): number {
  return Object.values(states).reduce((total, n) => total + n, 0)
}
