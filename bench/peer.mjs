/**
 * Against a peer, on Postgres: Parley's dispatch queue (claim, call the
 * mock provider, record `sent`, complete the job) beside pg-boss 10 doing
 * no-op jobs (fetch, run a handler that does nothing, complete), each on a
 * fresh database of the same server, each draining a backlog of the same
 * number of jobs.
 *
 * pg-boss's worker waits out its polling interval (at least 0.5 s) after
 * every fetch, even when it found a full batch, so its throughput is set
 * by batch size x workers / interval: with Parley's claim size (16 jobs,
 * one worker) it would do 32 jobs a second. It runs with 4 workers and
 * batches of 100, and of 500 (its best case here).
 *
 * Usage: node bench/peer.mjs [--tiny] [--out dir] [--jobs n]
 */
import { setTimeout as sleep } from 'node:timers/promises'
import PgBoss from 'pg-boss'
import { createMockProvider, createParley } from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { intOption, parseOptions } from './lib/options.mjs'
import { postgresProblem, throwawayDatabase } from './lib/postgres.mjs'
import { round, saveResult } from './lib/results.mjs'
import { sendBody } from './lib/traffic.mjs'

const options = parseOptions()
const jobs = intOption(options, 'jobs', options.tiny ? 200 : 10_000)

async function onThrowawayDatabase(work) {
  const database = await throwawayDatabase()
  try {
    return await work(database.url)
  } finally {
    await database.drop()
  }
}

// Queues `jobs` sends with the workers stopped, then times the drain.
async function parleyRun(url) {
  const config = { rateLimitPerSenderPerMin: 1_000_000 }
  const providers = [createMockProvider({ family: 'sms' })]
  const db = openPostgres({ connectionString: url })
  const loader = await createParley({ db, providers, config })
  for (let first = 0; first < jobs; first += 500) {
    const count = Math.min(500, jobs - first)
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        loader.send(JSON.parse(sendBody(first + i))),
      ),
    )
  }
  await loader.stop()
  const parley = await createParley({ db, providers, config, migrate: false })
  const started = performance.now()
  await parley.start()
  while (parley.metrics.snapshot().dispatch_success < jobs) await sleep(5)
  const seconds = (performance.now() - started) / 1000
  await parley.stop()
  await db.close()
  return { setup: 'Parley dispatch queue (concurrency 16)', seconds }
}

async function pgBossRun(url, batchSize, workers) {
  const boss = new PgBoss({ connectionString: url, max: 10 })
  boss.on('error', () => undefined)
  await boss.start()
  await boss.createQueue('noop')
  for (let first = 0; first < jobs; first += 1000) {
    const count = Math.min(1000, jobs - first)
    await boss.insert(
      Array.from({ length: count }, (_, i) => ({
        name: 'noop',
        data: { n: first + i },
      })),
    )
  }
  let done = 0
  const started = performance.now()
  for (let i = 0; i < workers; i += 1) {
    await boss.work(
      'noop',
      { batchSize, pollingIntervalSeconds: 0.5 },
      async (batch) => {
        done += batch.length
      },
    )
  }
  // Done when every job is completed in the database, not just handled.
  while (
    done < jobs ||
    (await boss.getQueueSize('noop', { before: 'completed' })) > 0
  ) {
    await sleep(20)
  }
  const seconds = (performance.now() - started) / 1000
  await boss.stop({ graceful: true, wait: true })
  return {
    setup: `pg-boss 10, no-op jobs, batch ${batchSize} x ${workers} worker${workers > 1 ? 's' : ''}`,
    seconds,
  }
}

const problem = await postgresProblem()
if (problem !== undefined) {
  process.stdout.write(`peer benchmark skipped: Postgres: ${problem}\n`)
  saveResult(options.out, 'peer', { postgres: problem, rows: [] })
} else {
  const parley = await onThrowawayDatabase(parleyRun)
  const bossSmall = await onThrowawayDatabase((url) => pgBossRun(url, 100, 4))
  const bossLarge = await onThrowawayDatabase((url) => pgBossRun(url, 500, 4))
  const parleyRate = jobs / parley.seconds
  const row = (run) => ({
    setup: run.setup,
    jobs,
    'jobs/s': Math.round(jobs / run.seconds),
    'Parley as ratio': round(parleyRate / (jobs / run.seconds)),
  })
  saveResult(options.out, 'peer', {
    settings: { jobs },
    postgres: 'measured',
    rows: [row(parley), row(bossSmall), row(bossLarge)],
  })
}
