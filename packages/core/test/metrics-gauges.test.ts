import { CompiledQuery } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { MetricFamily } from '../src/metrics/exposition.js'
import { claimDue, deadLetterRow } from '../src/queue/queue-table.js'
import { queueStatsQuery } from '../src/store/queue-stats.js'
import {
  createHarness,
  DIALECT,
  DIALECT_LABEL,
  type Harness,
  smsRequest,
} from './support.js'

function valueOf(
  families: readonly MetricFamily[],
  name: string,
  labels: Record<string, string>,
): number | undefined {
  return families
    .find((family) => family.name === name)
    ?.samples.find((sample) =>
      Object.entries(labels).every(
        ([key, value]) => sample.labels[key] === value,
      ),
    )?.value
}

describe(`queue gauges on ${DIALECT_LABEL}`, () => {
  let h: Harness

  beforeEach(async () => {
    h = await createHarness()
  })

  afterEach(async () => {
    await h.close()
  })

  async function queueThree(): Promise<void> {
    for (const to of ['+12025550101', '+12025550102', '+12025550103']) {
      await h.parley.send(smsRequest({ to }))
    }
  }

  it('reads an empty store as zero depth, zero age and no dead letters', async () => {
    const families = await h.parley.metrics.collect()

    for (const queue of ['dispatch', 'inbound']) {
      expect(
        valueOf(families, 'parley_queue_depth', { queue, state: 'pending' }),
      ).toBe(0)
      expect(
        valueOf(families, 'parley_queue_depth', { queue, state: 'running' }),
      ).toBe(0)
      expect(
        valueOf(families, 'parley_queue_oldest_pending_age_seconds', { queue }),
      ).toBe(0)
      expect(valueOf(families, 'parley_queue_dead_letters', { queue })).toBe(0)
    }
    expect(valueOf(families, 'parley_queue_stats_up', {})).toBe(1)
  })

  it('counts pending, running and dead rows and ages the oldest due row by the clock', async () => {
    await queueThree()
    h.clock.advance(90_000)
    const [first, second] = await h.db.writeTransaction((trx) =>
      claimDue<{ id: number; claim_token: string }>(trx, {
        table: 'dispatch_jobs',
        dialect: h.db.dialect,
        now: h.clock.iso(),
        leaseUntil: h.clock.iso(60_000),
        limit: 2,
        token: 'gauge-test',
      }),
    )
    await h.db.writeTransaction((trx) =>
      deadLetterRow(
        trx,
        {
          table: 'dispatch_jobs',
          id: String(first?.id),
          token: 'gauge-test',
          now: h.clock.iso(),
          attempts: 1,
        },
        'gone for good',
      ),
    )
    expect(second).toBeDefined()
    h.clock.advance(30_000)

    const families = await h.parley.metrics.collect()

    const dispatch = { queue: 'dispatch' }
    expect(
      valueOf(families, 'parley_queue_depth', {
        ...dispatch,
        state: 'pending',
      }),
    ).toBe(1)
    expect(
      valueOf(families, 'parley_queue_depth', {
        ...dispatch,
        state: 'running',
      }),
    ).toBe(1)
    expect(valueOf(families, 'parley_queue_dead_letters', dispatch)).toBe(1)
    expect(
      valueOf(families, 'parley_queue_oldest_pending_age_seconds', dispatch),
    ).toBe(120)
  })

  it('reads a pending row that is not due yet as no wait at all', async () => {
    await queueThree()
    h.clock.advance(-5_000)

    const families = await h.parley.metrics.collect()

    expect(
      valueOf(families, 'parley_queue_depth', {
        queue: 'dispatch',
        state: 'pending',
      }),
    ).toBe(3)
    expect(
      valueOf(families, 'parley_queue_oldest_pending_age_seconds', {
        queue: 'dispatch',
      }),
    ).toBe(0)
  })

  it('keeps the counters and marks the queue gauges down when storage fails', async () => {
    await h.db.close()
    h.close = async () => undefined

    const families = await h.parley.metrics.collect()

    expect(valueOf(families, 'parley_queue_stats_up', {})).toBe(0)
    expect(
      families.find((f) => f.name === 'parley_queue_depth'),
    ).toBeUndefined()
    expect(
      valueOf(families, 'parley_dispatch_attempts_total', { family: 'sms' }),
    ).toBe(0)
  })
})

describe(`queue gauge query plan on ${DIALECT_LABEL}`, () => {
  it('reads the (state, run_at) index, not the whole table', async (context) => {
    // Postgres plans by table statistics: on a test's tiny tables a
    // sequential scan is the right choice, so the plan says nothing there.
    if (DIALECT !== 'sqlite') return context.skip()
    const h = await createHarness()
    try {
      for (const queue of ['dispatch', 'inbound'] as const) {
        const query = queueStatsQuery(h.db.kysely, queue).compile()
        const plan = await h.db.kysely.executeQuery(
          CompiledQuery.raw(`explain query plan ${query.sql}`, [
            ...query.parameters,
          ]),
        )
        const steps = JSON.stringify(plan.rows)
        expect(steps, queue).toMatch(/USING (COVERING )?INDEX \w+_due_idx/)
        expect(steps, queue).not.toMatch(/"SCAN \w+"/)
      }
    } finally {
      await h.close()
    }
  })
})
