import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  claimDue,
  completeRow,
  deadLetterRow,
  releaseClaims,
  rescheduleRow,
  type Settlement,
} from '../src/queue/queue-table.js'
import {
  createHarness,
  DIALECT_LABEL,
  type Harness,
  plainRows,
  smsRequest,
} from './support.js'

interface Row {
  id: number
  state: string
  attempts: number
  claim_token: string | null
}

describe(`queue table on ${DIALECT_LABEL}`, () => {
  let h: Harness

  beforeEach(async () => {
    h = await createHarness()
  })

  afterEach(async () => {
    await h.close()
  })

  const claim = (token: string, limit = 10, leaseMs = 60_000) =>
    h.db.writeTransaction((trx) =>
      claimDue<Row>(trx, {
        table: 'dispatch_jobs',
        dialect: h.db.dialect,
        now: h.clock.iso(),
        leaseUntil: h.clock.iso(leaseMs),
        limit,
        token,
      }),
    )

  const jobs = async () =>
    plainRows(
      await h.db.kysely
        .selectFrom('dispatch_jobs')
        .selectAll()
        .orderBy('id')
        .execute(),
    )

  const settlement = (id: number, token: string): Settlement => ({
    table: 'dispatch_jobs',
    id: String(id),
    token,
    now: h.clock.iso(),
    attempts: 1,
  })

  async function queue(count: number) {
    for (let i = 0; i < count; i += 1) await h.parley.send(smsRequest())
  }

  it('claims due rows oldest first, up to the limit, with a lease', async () => {
    await queue(3)
    await h.db.kysely
      .updateTable('dispatch_jobs')
      .set({ run_at: h.clock.iso(-1000) })
      .where('id', '=', 3)
      .execute()

    const rows = await claim('t1', 2, 5000)

    // The oldest two are taken (3 was due earliest); the order in which
    // UPDATE … RETURNING hands them back is unspecified.
    expect(
      plainRows(rows)
        .map((row) => row.id)
        .sort(),
    ).toEqual([1, 3])
    const stored = await jobs()
    expect(stored.map((row) => row.state)).toEqual([
      'running',
      'pending',
      'running',
    ])
    expect(stored[0]).toMatchObject({
      claim_token: 't1',
      locked_until: h.clock.iso(5000),
    })
  })

  it('does not claim rows that are not due yet', async () => {
    await queue(1)
    await h.db.kysely
      .updateTable('dispatch_jobs')
      .set({ run_at: h.clock.iso(1) })
      .execute()

    expect(await claim('t1')).toEqual([])
    h.clock.advance(1)
    expect(await claim('t1')).toHaveLength(1)
  })

  it('does not claim a row again while its lease holds', async () => {
    await queue(1)
    await claim('crashed', 10, 30_000)

    h.clock.advance(29_999)
    expect(await claim('t2')).toEqual([])

    h.clock.advance(1)
    const [row] = plainRows(await claim('t2'))
    expect(row).toMatchObject({ id: 1, claim_token: 't2', state: 'running' })
  })

  it('never claims settled or dead rows', async () => {
    await queue(2)
    await claim('t1')
    await h.db.writeTransaction(async (trx) => {
      await completeRow(trx, settlement(1, 't1'))
      await deadLetterRow(trx, settlement(2, 't1'), 'gone')
    })
    h.clock.advance(10 * 60_000)

    expect(await claim('t2')).toEqual([])
    expect((await jobs()).map((row) => row.state)).toEqual(['done', 'dead'])
  })

  it('settles only with the token that holds the claim', async () => {
    await queue(1)
    await claim('t1')

    const lost = await h.db.writeTransaction((trx) =>
      completeRow(trx, settlement(1, 'someone-else')),
    )
    const kept = await h.db.writeTransaction((trx) =>
      rescheduleRow(trx, settlement(1, 't1'), h.clock.iso(500), 'flaky'),
    )

    expect(lost).toBe(false)
    expect(kept).toBe(true)
    expect((await jobs())[0]).toMatchObject({
      state: 'pending',
      attempts: 1,
      run_at: h.clock.iso(500),
      last_error: 'flaky',
      claim_token: null,
      locked_until: null,
    })
    const again = await h.db.writeTransaction((trx) =>
      completeRow(trx, settlement(1, 't1')),
    )
    expect(again).toBe(false)
  })

  it('gives back only the rows of one token, due now', async () => {
    await queue(3)
    await claim('mine', 2)
    await claim('theirs', 1)
    h.clock.advance(10)

    const released = await releaseClaims(
      h.db.kysely,
      'dispatch_jobs',
      'mine',
      h.clock.iso(),
    )

    expect(released).toBe(2)
    const stored = await jobs()
    expect(stored.slice(0, 2)).toEqual([
      expect.objectContaining({
        state: 'pending',
        run_at: h.clock.iso(),
        claim_token: null,
        locked_until: null,
      }),
      expect.objectContaining({ state: 'pending', claim_token: null }),
    ])
    expect(stored[2]).toMatchObject({ state: 'running', claim_token: 'theirs' })
    expect(await claim('next')).toHaveLength(2)
  })

  it('releases nothing for a token that holds nothing', async () => {
    await queue(1)

    expect(
      await releaseClaims(
        h.db.kysely,
        'inbound_events',
        'nobody',
        h.clock.iso(),
      ),
    ).toBe(0)
  })
})
