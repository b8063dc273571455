/**
 * Provider delivery reports (status callbacks) in core: a sent message
 * moves to delivered, undelivered, bounced or failed; never backwards and
 * never out of a terminal state; repeats change nothing; and a report that
 * arrives before the send has stored the provider's id is kept and applied
 * when it is. The mock providers' ids are `<name>-<message id>-<attempt>`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  type DeliveryStatusUpdate,
  type MockProvider,
} from '@parley/core'
import type { DispatchWorker } from '../src/queue/dispatch-worker.js'
import {
  BULK_LIMITS,
  createHarness,
  DIALECT_LABEL,
  emailRequest,
  type Harness,
  messageRow,
  smsRequest,
  watchingDeadlocks,
} from './support.js'

const sms = (
  providerMessageId: string,
  status: DeliveryStatusUpdate['status'],
): DeliveryStatusUpdate => ({ family: 'sms', providerMessageId, status })

const email = (
  providerMessageId: string,
  status: DeliveryStatusUpdate['status'],
): DeliveryStatusUpdate => ({ family: 'email', providerMessageId, status })

describe(`delivery reports on ${DIALECT_LABEL}`, () => {
  let h: Harness
  let worker: DispatchWorker
  let smsMock: MockProvider

  async function setup(): Promise<void> {
    smsMock = createMockProvider({ family: 'sms', seed: 1 })
    h = await createHarness({
      providers: [smsMock, createMockProvider({ family: 'email', seed: 1 })],
    })
    worker = h.dispatchWorker()
  }

  afterEach(async () => {
    await h.close()
  })

  async function round(): Promise<void> {
    await worker.step()
    await worker.idle()
  }

  /** Sends an SMS and dispatches it: sent, as `mock-sms-<id>-1`. */
  async function sentSms(): Promise<string> {
    const { id } = await h.parley.send(smsRequest())
    await round()
    expect((await h.parley.messages.get(id)).providerMessageId).toBe(
      `mock-sms-${id}-1`,
    )
    return id
  }

  async function sentEmail(): Promise<string> {
    const { id } = await h.parley.send(emailRequest(), { channel: 'email' })
    await round()
    return id
  }

  const statusOf = async (id: string) =>
    (await h.parley.messages.get(id)).status

  it('moves a sent SMS to delivered', async () => {
    await setup()
    const id = await sentSms()

    const results = await h.parley.reportDelivery([
      sms(`mock-sms-${id}-1`, 'delivered'),
    ])

    expect(results).toEqual([
      { kind: 'applied', messageId: id, status: 'delivered' },
    ])
    expect(await statusOf(id)).toBe('delivered')
  })

  it('moves a sent SMS to undelivered and a sent email to bounced', async () => {
    await setup()
    const smsId = await sentSms()
    const emailId = await sentEmail()

    await h.parley.reportDelivery([
      sms(`mock-sms-${smsId}-1`, 'undelivered'),
      email(`mock-email-${emailId}-1`, 'bounced'),
    ])

    expect(await statusOf(smsId)).toBe('undelivered')
    expect(await statusOf(emailId)).toBe('bounced')
  })

  it('never moves a message backwards: delivered then sent stays delivered', async () => {
    await setup()
    const id = await sentSms()
    await h.parley.reportDelivery([sms(`mock-sms-${id}-1`, 'delivered')])

    const results = await h.parley.reportDelivery([
      sms(`mock-sms-${id}-1`, 'sent'),
    ])

    expect(results).toEqual([{ kind: 'unchanged', messageId: id }])
    expect(await statusOf(id)).toBe('delivered')
  })

  it('never moves a message out of a terminal state: failed stays failed', async () => {
    await setup()
    const id = await sentSms()
    await h.parley.reportDelivery([sms(`mock-sms-${id}-1`, 'failed')])

    await h.parley.reportDelivery([
      sms(`mock-sms-${id}-1`, 'delivered'),
      sms(`mock-sms-${id}-1`, 'undelivered'),
      sms(`mock-sms-${id}-1`, 'sent'),
    ])

    expect(await statusOf(id)).toBe('failed')
  })

  it('changes nothing when the same report comes again', async () => {
    await setup()
    const id = await sentSms()
    const report = sms(`mock-sms-${id}-1`, 'delivered')
    await h.parley.reportDelivery([report])
    const before = await messageRow(h.db, id)
    h.clock.advance(60_000)

    const again = await h.parley.reportDelivery([report, report])

    expect(again).toEqual([
      { kind: 'unchanged', messageId: id },
      { kind: 'unchanged', messageId: id },
    ])
    expect(await messageRow(h.db, id)).toEqual(before)
  })

  it('matches a report only within its own family', async () => {
    await setup()
    const id = await sentSms()

    const [result] = await h.parley.reportDelivery([
      email(`mock-sms-${id}-1`, 'delivered'),
    ])

    expect(result).toEqual({ kind: 'pending' })
    expect(await statusOf(id)).toBe('sent')
  })

  it('keeps a report that arrives before the provider id is stored, and applies it when the send stores it', async () => {
    await setup()
    const { id } = await h.parley.send(smsRequest())

    const [early] = await h.parley.reportDelivery([
      sms(`mock-sms-${id}-1`, 'delivered'),
    ])
    expect(early).toEqual({ kind: 'pending' })
    expect(await statusOf(id)).toBe('queued')

    await round()

    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'delivered',
      providerMessageId: `mock-sms-${id}-1`,
    })
    const waiting = await h.db.kysely
      .selectFrom('pending_status_updates')
      .selectAll()
      .execute()
    expect(waiting).toEqual([])
  })

  it('applies the furthest of several early reports', async () => {
    await setup()
    const { id } = await h.parley.send(emailRequest(), { channel: 'email' })
    await h.parley.reportDelivery([
      email(`mock-email-${id}-1`, 'sent'),
      email(`mock-email-${id}-1`, 'bounced'),
      email(`mock-email-${id}-1`, 'sent'),
    ])

    await round()

    expect(await statusOf(id)).toBe('bounced')
  })

  it('keeps an early report for a later attempt until that attempt succeeds', async () => {
    await setup()
    smsMock.configure({ errorPct: 100 })
    const { id } = await h.parley.send(smsRequest())
    await h.parley.reportDelivery([sms(`mock-sms-${id}-2`, 'delivered')])

    await round()
    expect(await statusOf(id)).toBe('queued')
    smsMock.configure({ errorPct: 0 })
    h.clock.advance(60_000)
    await round()

    expect(await h.parley.messages.get(id)).toMatchObject({
      status: 'delivered',
      attempts: 2,
      providerMessageId: `mock-sms-${id}-2`,
    })
  })

  it('does not let an early sent report hold a message back', async () => {
    await setup()
    const { id } = await h.parley.send(smsRequest())
    await h.parley.reportDelivery([sms(`mock-sms-${id}-1`, 'sent')])

    await round()
    await h.parley.reportDelivery([sms(`mock-sms-${id}-1`, 'delivered')])

    expect(await statusOf(id)).toBe('delivered')
  })

  // A report that finds no message yet is kept as pending, and the send
  // that stores the provider id takes what is pending. When the two run at
  // once on two instances of one Postgres, each sees the other's rows only
  // once committed: a report kept while the id was being stored must still
  // be applied, never stranded.
  it('applies a report that races the send storing its provider id, on another instance', async () => {
    await setup()
    const other = await createParley({
      db: h.db,
      providers: [createMockProvider({ family: 'sms', seed: 1 })],
      config: BULK_LIMITS,
      migrate: false,
    })
    const ids: string[] = []
    for (let i = 0; i < 120; i += 1) {
      const { id } = await h.parley.send(smsRequest({ body: `race ${i}` }))
      ids.push(id)
      // The dispatch and the report start together, the report a little
      // later each time, so that some land inside the send's transaction.
      await Promise.all([
        round(),
        (async () => {
          for (let turn = 0; turn < i % 12; turn += 1) {
            await new Promise<void>((resolve) => setImmediate(resolve))
          }
          await other.reportDelivery([sms(`mock-sms-${id}-1`, 'delivered')])
        })(),
      ])
    }
    const statuses = await Promise.all(ids.map((id) => statusOf(id)))
    expect(statuses.filter((status) => status !== 'delivered')).toEqual([])
  })

  // Two instances on one database report the same messages at once, in
  // opposite orders and with different terminal statuses (as two
  // providers' retries may), one report per request or many. Each message
  // must end in one terminal status applied once, and no report may fail
  // or even meet a deadlock: on Postgres, rows locked in opposite orders
  // deadlock (a second's wait, then a retry or a 503), and a status read
  // before the other instance's commit would be overwritten after it.
  it('applies reports of two instances on the same messages at once, each message once, without a deadlock', async () => {
    await setup()
    const watched = watchingDeadlocks(h.db)
    const instance = () =>
      createParley({
        db: watched.db,
        providers: [createMockProvider({ family: 'sms', seed: 1 })],
        config: BULK_LIMITS,
        migrate: false,
      })
    const [a, b] = [await instance(), await instance()]
    const ids: string[] = []
    for (let i = 0; i < 48; i += 1) {
      ids.push((await h.parley.send(smsRequest({ body: `m${i}` }))).id)
    }
    for (let i = 0; i < 10 && (await statusOf(ids.at(-1)!)) !== 'sent'; i++) {
      await round()
    }
    for (const id of ids) expect(await statusOf(id)).toBe('sent')
    const pid = (id: string) => `mock-sms-${id}-1`

    for (let i = 0; i < ids.length; i += 8) {
      const group = ids.slice(i, i + 8)
      const reversed = [...group].reverse()
      // Even rounds: one request of many reports each way. Odd rounds: one
      // request a report on one side, which the group commit batches in
      // the order they arrive (the opposite of the other side's).
      const answers =
        (i / 8) % 2 === 0
          ? await Promise.all([
              a.reportDelivery(group.map((id) => sms(pid(id), 'delivered'))),
              b.reportDelivery(
                reversed.map((id) => sms(pid(id), 'undelivered')),
              ),
            ])
          : await Promise.all([
              a.reportDelivery(group.map((id) => sms(pid(id), 'delivered'))),
              ...reversed.map((id) =>
                b.reportDelivery([sms(pid(id), 'undelivered')]),
              ),
            ])
      const results = answers.flat()
      const applied = results.filter((result) => result.kind === 'applied')
      expect(
        applied.map((r) => r.kind === 'applied' && r.messageId).sort(),
      ).toEqual([...group].sort())
      // The answers keep the order of the reports they answer.
      expect(
        answers[0]!.map((r) => r.kind !== 'pending' && r.messageId),
      ).toEqual(group)
      for (const result of applied) {
        if (result.kind !== 'applied') continue
        expect(await statusOf(result.messageId)).toBe(result.status)
      }
    }
    expect(watched.deadlocks()).toBe(0)
  })
})
