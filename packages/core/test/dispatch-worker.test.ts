import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ProviderOutcome } from '@parley/core'
import { type LogFields, silentLogger } from '../src/util/logger.js'
import { claimDue } from '../src/queue/queue-table.js'
import {
  createHarness,
  deferred,
  DIALECT_LABEL,
  emailRequest,
  type Harness,
  type HarnessOptions,
  jobOf,
  messageRow,
  scriptedProvider,
  type ScriptedProvider,
  smsRequest,
} from './support.js'

const sent = (id = 'p-1'): ProviderOutcome => ({
  kind: 'sent',
  providerMessageId: id,
})
const transient: ProviderOutcome = { kind: 'transient', error: '503 busy' }

/** Waits (without a clock) until `check` passes. */
const eventually = (check: () => void | Promise<void>) =>
  vi.waitFor(check, { timeout: 2000, interval: 1 })

describe(`DispatchWorker on ${DIALECT_LABEL}`, () => {
  let h: Harness

  async function setup(
    providers: ScriptedProvider[],
    options: Omit<HarnessOptions, 'providers'> = {},
  ) {
    h = await createHarness({ ...options, providers })
    return h
  }

  /** One claim round, then waits for the jobs it started. */
  async function round(worker = h.dispatchWorker()) {
    await worker.step()
    await worker.idle()
  }

  afterEach(async () => {
    await h.close()
  })

  describe('delivery', () => {
    it('marks a message sent with the provider and its id', async () => {
      const provider = scriptedProvider('sms', () => sent('SM-77'), 'twilio')
      await setup([provider])
      const { id } = await h.parley.send(smsRequest())
      h.clock.advance(250)

      await round()

      expect(await messageRow(h.db, id)).toMatchObject({
        status: 'sent',
        provider: 'twilio',
        provider_message_id: 'SM-77',
        updated_at: h.clock.iso(),
      })
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'done',
        attempts: 1,
        claim_token: null,
        locked_until: null,
        last_error: null,
      })
      expect(await h.parley.messages.get(id)).toMatchObject({
        status: 'sent',
        attempts: 1,
        nextAttemptAt: null,
        provider: 'twilio',
        providerMessageId: 'SM-77',
      })
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_attempts: 1,
        dispatch_success: 1,
        provider_sms_mms_attempts: 1,
        provider_sms_mms_success: 1,
        provider_email_attempts: 0,
      })
    })

    it('hands providers E.164 numbers and email addresses as given', async () => {
      const sms = scriptedProvider('sms', () => sent())
      const email = scriptedProvider('email', () => sent())
      await setup([sms, email])
      await h.parley.send(
        smsRequest({
          type: 'mms',
          from: '(804) 555-1234',
          to: '202.555.0100',
          attachments: ['https://cdn.example.com/a.png'],
          timestamp: '2024-11-01T10:00:00-04:00',
        }),
      )
      await h.parley.send(
        emailRequest({
          from: 'Ann <Ann+x@Example.com>',
          to: '"Doe, Jane" <jane@example.com>',
          body: '<p>Hi</p>',
        }),
        { channel: 'email' },
      )

      await round()

      expect(sms.calls.map((c) => c.message)).toEqual([
        {
          id: '1',
          channel: 'mms',
          from: '+18045551234',
          to: '+12025550100',
          subject: null,
          body: 'Hello there',
          attachments: ['https://cdn.example.com/a.png'],
          timestamp: '2024-11-01T14:00:00.000Z',
        },
      ])
      expect(email.calls[0]?.message).toMatchObject({
        id: '2',
        channel: 'email',
        from: 'Ann <Ann+x@Example.com>',
        to: '"Doe, Jane" <jane@example.com>',
        subject: 'Hi',
        body: '<p>Hi</p>',
      })
      expect(sms.calls[0]?.context.attempt).toBe(1)
    })

    it('marks a claimed message sending while its call runs', async () => {
      const gate = deferred<ProviderOutcome>()
      const provider = scriptedProvider('sms', () => gate.promise)
      await setup([provider])
      const { id } = await h.parley.send(smsRequest())
      const worker = h.dispatchWorker()

      await worker.step()
      await eventually(() => expect(provider.calls).toHaveLength(1))

      expect((await messageRow(h.db, id)).status).toBe('sending')
      expect((await h.parley.messages.get(id)).nextAttemptAt).toBeNull()
      gate.resolve(sent())
      await worker.idle()
      expect((await messageRow(h.db, id)).status).toBe('sent')
    })

    it('marks every message of a claim sending, and no other', async () => {
      const gate = deferred<ProviderOutcome>()
      const provider = scriptedProvider('sms', () => gate.promise)
      await setup([provider])
      const claimed = []
      for (let i = 0; i < 3; i += 1) {
        claimed.push((await h.parley.send(smsRequest())).id)
      }
      const worker = h.dispatchWorker()

      await worker.step()
      await eventually(() => expect(provider.calls).toHaveLength(3))
      const later = (await h.parley.send(smsRequest())).id

      for (const id of claimed) {
        expect((await messageRow(h.db, id)).status).toBe('sending')
      }
      expect((await messageRow(h.db, later)).status).toBe('queued')
      gate.resolve(sent())
      await worker.idle()
    })

    it('claims no more jobs than its concurrency allows', async () => {
      const gate = deferred<ProviderOutcome>()
      const provider = scriptedProvider('sms', () => gate.promise)
      await setup([provider], { config: { dispatchConcurrency: 2 } })
      for (let i = 0; i < 5; i += 1) await h.parley.send(smsRequest())
      const worker = h.dispatchWorker()

      expect(await worker.step()).toBe(true)
      await eventually(() => expect(provider.calls).toHaveLength(2))
      expect(await worker.step()).toBe(false)

      const states = await h.db.kysely
        .selectFrom('dispatch_jobs')
        .select('state')
        .orderBy('id')
        .execute()
      expect(states.map((s) => s.state)).toEqual([
        'running',
        'running',
        'pending',
        'pending',
        'pending',
      ])
      gate.resolve(sent())
      await worker.idle()
      expect(await worker.step()).toBe(true)
      await worker.idle()
      expect(await worker.step()).toBe(false)
      await worker.idle()
      expect(provider.calls).toHaveLength(5)
    })

    it('reports an empty queue as no more work', async () => {
      await setup([scriptedProvider('sms', () => sent())])

      expect(await h.dispatchWorker().step()).toBe(false)
    })
  })

  describe('leases', () => {
    it('does not claim a running job again while its lease holds', async () => {
      const gate = deferred<ProviderOutcome>()
      const slow = scriptedProvider('sms', () => gate.promise, 'slow')
      const fast = scriptedProvider('sms', () => sent('FAST-1'), 'fast')
      await setup([slow], { config: { leaseMs: 30_000 } })
      const { id } = await h.parley.send(smsRequest())
      const first = h.dispatchWorker([slow])
      const second = h.dispatchWorker([fast])

      await first.step()
      await eventually(() => expect(slow.calls).toHaveLength(1))
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'running',
        locked_until: h.clock.iso(30_000),
      })
      h.clock.advance(29_999)
      await round(second)

      expect(fast.calls).toHaveLength(0)
      expect((await jobOf(h.db, id)).state).toBe('running')
      gate.resolve(sent('SLOW-1'))
      await first.idle()
      expect(await messageRow(h.db, id)).toMatchObject({
        status: 'sent',
        provider_message_id: 'SLOW-1',
      })
    })

    it('keeps renewing the lease of a running call while the worker polls', async () => {
      const gate = deferred<ProviderOutcome>()
      const slow = scriptedProvider('sms', () => gate.promise, 'slow')
      const fast = scriptedProvider('sms', () => sent('FAST-1'), 'fast')
      await setup([slow], { config: { leaseMs: 30_000 } })
      const { id } = await h.parley.send(smsRequest())
      const first = h.dispatchWorker([slow])
      const second = h.dispatchWorker([fast])
      await first.step()
      await eventually(() => expect(slow.calls).toHaveLength(1))

      // Not due yet: a third of the lease has not passed.
      h.clock.advance(9_999)
      await first.step()
      expect((await jobOf(h.db, id)).locked_until).toBe(h.clock.iso(20_001))
      h.clock.advance(15_001)
      await first.step()
      expect((await jobOf(h.db, id)).locked_until).toBe(h.clock.iso(30_000))
      // Past the first lease: the renewed one still holds.
      h.clock.advance(29_999)
      await round(second)

      expect(fast.calls).toHaveLength(0)
      gate.resolve(sent('SLOW-1'))
      await first.idle()
      expect(await messageRow(h.db, id)).toMatchObject({
        status: 'sent',
        provider_message_id: 'SLOW-1',
      })
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'done',
        attempts: 1,
      })
    })

    it('renews only the leases it still holds', async () => {
      const gate = deferred<ProviderOutcome>()
      const slow = scriptedProvider('sms', () => gate.promise, 'slow')
      const fast = scriptedProvider('sms', () => sent('FAST-1'), 'fast')
      await setup([slow], { config: { leaseMs: 30_000 } })
      const { id } = await h.parley.send(smsRequest())
      const first = h.dispatchWorker([slow])
      const second = h.dispatchWorker([fast])
      await first.step()
      await eventually(() => expect(slow.calls).toHaveLength(1))
      h.clock.advance(30_000)
      await round(second)
      const afterTakeover = await jobOf(h.db, id)

      await first.step()

      expect(await jobOf(h.db, id)).toEqual(afterTakeover)
      gate.resolve(sent('LATE'))
      await first.idle()
    })

    it('claims a job again once the lease of a crashed worker expires', async () => {
      const provider = scriptedProvider('sms', () => sent())
      await setup([provider], { config: { leaseMs: 30_000 } })
      const { id } = await h.parley.send(smsRequest())
      // A worker claims the job and dies before settling it.
      await h.db.writeTransaction((trx) =>
        claimDue(trx, {
          table: 'dispatch_jobs',
          dialect: h.db.dialect,
          now: h.clock.iso(),
          leaseUntil: h.clock.iso(30_000),
          limit: 10,
          token: 'dispatch:crashed',
        }),
      )
      const worker = h.dispatchWorker()

      h.clock.advance(29_999)
      await round(worker)
      expect(provider.calls).toHaveLength(0)

      h.clock.advance(1)
      await round(worker)

      expect(provider.calls).toHaveLength(1)
      expect(provider.calls[0]?.context.attempt).toBe(1)
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'done',
        attempts: 1,
      })
    })

    it('writes nothing when a call ends after its claim was taken over', async () => {
      const gate = deferred<ProviderOutcome>()
      const slow = scriptedProvider('sms', () => gate.promise, 'slow')
      const fast = scriptedProvider('sms', () => sent('FAST-1'), 'fast')
      await setup([slow], { config: { leaseMs: 30_000 } })
      const { id } = await h.parley.send(smsRequest())
      const first = h.dispatchWorker([slow])
      const second = h.dispatchWorker([fast])
      await first.step()
      await eventually(() => expect(slow.calls).toHaveLength(1))

      h.clock.advance(30_000)
      await round(second)
      const afterTakeover = await jobOf(h.db, id)
      gate.resolve({ kind: 'permanent', error: '400 rejected' })
      await first.idle()

      expect(afterTakeover).toMatchObject({ state: 'done', attempts: 1 })
      expect(await jobOf(h.db, id)).toEqual(afterTakeover)
      expect(await messageRow(h.db, id)).toMatchObject({
        status: 'sent',
        provider: 'fast',
        provider_message_id: 'FAST-1',
      })
      expect(h.metrics.snapshot().dispatch_dead_letter).toBe(0)
    })

    it.each([
      ['a success', sent('LATE')],
      ['a transient failure', transient],
      ['a permanent rejection', { kind: 'permanent', error: '400' } as const],
    ])(
      'writes nothing for %s when its claim token changed during the call',
      async (_, outcome) => {
        const gate = deferred<ProviderOutcome>()
        const provider = scriptedProvider('sms', () => gate.promise)
        await setup([provider])
        const { id } = await h.parley.send(smsRequest())
        const worker = h.dispatchWorker()
        await worker.step()
        await eventually(() => expect(provider.calls).toHaveLength(1))
        await h.db.kysely
          .updateTable('dispatch_jobs')
          .set({ claim_token: 'dispatch:other' })
          .execute()
        const before = await jobOf(h.db, id)

        gate.resolve(outcome)
        await worker.idle()

        expect(await jobOf(h.db, id)).toEqual(before)
        expect(await messageRow(h.db, id)).toMatchObject({
          status: 'sending',
          provider: null,
          provider_message_id: null,
        })
        expect(h.metrics.snapshot().dispatch_dead_letter).toBe(0)
      },
    )

    it('aborts calls still running after the grace period and requeues their jobs uncounted', async () => {
      // The first call hangs until aborted; later calls succeed.
      let calls = 0
      const provider = scriptedProvider('sms', ({ context }) =>
        ++calls > 1
          ? sent()
          : new Promise<ProviderOutcome>((resolve) => {
              context.signal.addEventListener('abort', () =>
                resolve({ kind: 'transient', error: 'aborted' }),
              )
            }),
      )
      await setup([provider], { random: () => 0 })
      const { id } = await h.parley.send(smsRequest())
      const worker = h.dispatchWorker()
      worker.start()
      await eventually(() => expect(provider.calls).toHaveLength(1))

      const finished = await worker.stop(5)

      expect(finished).toBe(false)
      expect(provider.calls[0]?.context.signal.aborted).toBe(true)
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'pending',
        run_at: h.clock.iso(),
        locked_until: null,
        claim_token: null,
      })
      expect((await messageRow(h.db, id)).status).toBe('queued')
      // The abandoned call is not an answered attempt: it is not counted.
      expect(await jobOf(h.db, id)).toMatchObject({ attempts: 0 })
      expect(h.metrics.snapshot().dispatch_attempts).toBe(0)
      await round()
      expect(provider.calls).toHaveLength(2)
      expect(provider.calls[1]?.context.attempt).toBe(1)
    })

    it('stops, logging it, when the database refuses to take its jobs back', async () => {
      const provider = scriptedProvider(
        'sms',
        ({ context }) =>
          new Promise<ProviderOutcome>((resolve) => {
            context.signal.addEventListener('abort', () =>
              resolve({ kind: 'transient', error: 'aborted' }),
            )
          }),
      )
      await setup([provider])
      const { id } = await h.parley.send(smsRequest())
      const warnings: [string, LogFields | undefined][] = []
      const logger = {
        ...silentLogger,
        warn: (event: string, fields?: LogFields) =>
          warnings.push([event, fields]),
      }
      const worker = h.dispatchWorker(undefined, logger)
      worker.start()
      await eventually(() => expect(provider.calls).toHaveLength(1))
      h.db.before = () => {
        throw new Error('database unavailable')
      }

      const finished = await worker.stop(5)
      h.db.before = undefined

      expect(finished).toBe(false)
      expect(warnings).toContainEqual([
        'dispatch.release_failed',
        { error: 'database unavailable' },
      ])
      // Still claimed: it comes back when its lease ends.
      expect(await jobOf(h.db, id)).toMatchObject({ state: 'running' })
    })

    it('reports a clean stop when its calls finish within the grace period', async () => {
      await setup([scriptedProvider('sms', () => sent())])
      const { id } = await h.parley.send(smsRequest())
      const worker = h.dispatchWorker()
      worker.start()
      await eventually(async () =>
        expect((await jobOf(h.db, id)).state).toBe('done'),
      )

      expect(await worker.stop(1000)).toBe(true)
    })
  })

  describe('retries', () => {
    it('retries a transient failure with capped exponential full-jitter backoff', async () => {
      const provider = scriptedProvider('sms', () => transient)
      await setup([provider], {
        random: () => 0.999,
        config: { maxRetries: 4, backoffBaseMs: 1000, backoffMaxMs: 3000 },
      })
      const { id } = await h.parley.send(smsRequest())
      const worker = h.dispatchWorker()
      const delays: number[] = []

      for (let attempt = 1; attempt <= 4; attempt += 1) {
        await round(worker)
        const job = await jobOf(h.db, id)
        expect(job).toMatchObject({
          state: 'pending',
          attempts: attempt,
          last_error: '503 busy',
        })
        const delay = Date.parse(String(job.run_at)) - h.clock.now()
        delays.push(delay)
        expect((await messageRow(h.db, id)).status).toBe('queued')
        expect((await h.parley.messages.get(id)).nextAttemptAt).toBe(
          h.clock.iso(delay),
        )

        h.clock.advance(delay - 1)
        await round(worker)
        expect(provider.calls).toHaveLength(attempt)
        h.clock.advance(1)
      }

      expect(delays).toEqual([999, 1998, 2997, 2997])
      await round(worker)
      expect(provider.calls.map((c) => c.context.attempt)).toEqual([
        1, 2, 3, 4, 5,
      ])
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'dead',
        attempts: 5,
        last_error: '503 busy',
      })
      expect(await h.parley.messages.get(id)).toMatchObject({
        status: 'failed',
        attempts: 5,
        lastError: '503 busy',
        nextAttemptAt: null,
      })
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_attempts: 5,
        dispatch_error: 5,
        dispatch_success: 0,
        provider_sms_mms_attempts: 5,
        provider_sms_mms_error: 5,
        dispatch_dead_letter: 1,
      })
    })

    it.each([0, 0.25, 0.5, 0.999])(
      'never schedules a retry beyond the full-jitter ceiling (draw %d)',
      async (draw) => {
        await setup([scriptedProvider('sms', () => transient)], {
          random: () => draw,
          config: { backoffBaseMs: 400 },
        })
        const { id } = await h.parley.send(smsRequest())

        await round()

        const job = await jobOf(h.db, id)
        const delay = Date.parse(String(job.run_at)) - h.clock.now()
        expect(delay).toBeGreaterThanOrEqual(0)
        expect(delay).toBeLessThanOrEqual(400)
        expect(delay).toBe(Math.floor(draw * 400))
      },
    )

    it('fails a message for good after one attempt when maxRetries is 0', async () => {
      await setup([scriptedProvider('sms', () => transient)], {
        config: { maxRetries: 0 },
      })
      const { id } = await h.parley.send(smsRequest())

      await round()

      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'dead',
        attempts: 1,
      })
      expect(h.metrics.snapshot().dispatch_dead_letter).toBe(1)
    })

    it.each([
      ['throws before returning a promise', 'boom'],
      ['resolves with nothing', 'invalid outcome (kind undefined)'],
      ['resolves with an unknown kind', 'invalid outcome (kind "bogus")'],
      ['says sent without an id', 'sent without a providerMessageId'],
      ['gives a retry delay that is not a number', 'retryAfterMs NaN'],
    ])(
      'counts a provider that %s as a transient attempt and dead-letters it at last',
      async (how, error) => {
        const answers: Record<string, () => unknown> = {
          'throws before returning a promise': () => {
            throw new Error('boom')
          },
          'resolves with nothing': () => Promise.resolve(undefined),
          'resolves with an unknown kind': () =>
            Promise.resolve({ kind: 'bogus' }),
          'says sent without an id': () => Promise.resolve({ kind: 'sent' }),
          'gives a retry delay that is not a number': () =>
            Promise.resolve({
              kind: 'rate_limited',
              retryAfterMs: Number.NaN,
              error: '429',
            }),
        }
        const provider = {
          name: 'custom',
          family: 'sms',
          send: answers[how],
        } as unknown as ScriptedProvider
        await setup([provider], { config: { maxRetries: 1 } })
        const { id } = await h.parley.send(smsRequest())

        await round()
        h.clock.advance(3_600_000)
        await round()

        const job = await jobOf(h.db, id)
        expect(job).toMatchObject({ state: 'dead', attempts: 2 })
        expect(job.last_error).toContain(error)
        expect((await messageRow(h.db, id)).status).toBe('failed')
        expect(h.metrics.snapshot()).toMatchObject({
          dispatch_attempts: 2,
          dispatch_error: 2,
          dispatch_dead_letter: 1,
        })
      },
    )

    it('fails a permanent rejection at once', async () => {
      const provider = scriptedProvider('email', () => ({
        kind: 'permanent',
        error: '400 invalid recipient',
      }))
      await setup([provider])
      const { id } = await h.parley.send(emailRequest(), { channel: 'email' })

      await round()
      h.clock.advance(3_600_000)
      await round()

      expect(provider.calls).toHaveLength(1)
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'dead',
        attempts: 1,
        last_error: '400 invalid recipient',
      })
      expect((await messageRow(h.db, id)).status).toBe('failed')
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_attempts: 1,
        dispatch_error: 1,
        provider_email_attempts: 1,
        provider_email_error: 1,
        dispatch_dead_letter: 1,
      })
    })

    it('does not retry a rate-limited call before its Retry-After', async () => {
      let answer: ProviderOutcome = {
        kind: 'rate_limited',
        retryAfterMs: 30_000,
        error: '429 slow down',
      }
      const provider = scriptedProvider('sms', () => answer)
      await setup([provider], { random: () => 0.999 })
      const { id } = await h.parley.send(smsRequest())
      const worker = h.dispatchWorker()

      await round(worker)
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'pending',
        attempts: 1,
        run_at: h.clock.iso(30_000),
        last_error: '429 slow down',
      })
      h.clock.advance(29_999)
      await round(worker)
      expect(provider.calls).toHaveLength(1)

      answer = sent()
      h.clock.advance(1)
      await round(worker)

      expect(provider.calls).toHaveLength(2)
      expect((await messageRow(h.db, id)).status).toBe('sent')
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_attempts: 2,
        dispatch_rate_limited: 1,
        dispatch_success: 1,
        dispatch_error: 0,
        provider_sms_mms_rate_limited: 1,
      })
    })

    it('caps a provider’s Retry-After at retryAfterMaxMs', async () => {
      await setup(
        [
          scriptedProvider('sms', () => ({
            kind: 'rate_limited',
            retryAfterMs: 86_400_000,
            error: '429',
          })),
        ],
        { random: () => 0, config: { retryAfterMaxMs: 120_000 } },
      )
      const { id } = await h.parley.send(smsRequest())

      await round()

      expect((await jobOf(h.db, id)).run_at).toBe(h.clock.iso(120_000))
    })

    it('waits the backoff when a rate-limited answer names a shorter wait', async () => {
      await setup(
        [
          scriptedProvider('sms', () => ({
            kind: 'rate_limited',
            retryAfterMs: 10,
            error: '429',
          })),
        ],
        { random: () => 0.5, config: { backoffBaseMs: 1000 } },
      )
      const { id } = await h.parley.send(smsRequest())

      await round()

      expect((await jobOf(h.db, id)).run_at).toBe(h.clock.iso(500))
    })

    it('backs off a rate-limited call without Retry-After and fails it after the last attempt', async () => {
      const provider = scriptedProvider('sms', () => ({
        kind: 'rate_limited',
        error: '429',
      }))
      await setup([provider], {
        random: () => 0.999,
        config: { maxRetries: 1 },
      })
      const { id } = await h.parley.send(smsRequest())

      await round()
      expect((await jobOf(h.db, id)).run_at).toBe(h.clock.iso(999))
      h.clock.advance(999)
      await round()

      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'dead',
        attempts: 2,
      })
      expect((await messageRow(h.db, id)).status).toBe('failed')
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_rate_limited: 2,
        dispatch_dead_letter: 1,
      })
    })

    it('counts a provider that throws as a transient failure', async () => {
      let calls = 0
      const provider = scriptedProvider('sms', () => {
        calls += 1
        if (calls === 1) throw new Error('socket hang up')
        return sent()
      })
      await setup([provider], { random: () => 0 })
      const { id } = await h.parley.send(smsRequest())

      await round()
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'pending',
        attempts: 1,
        last_error: 'socket hang up',
      })
      await round()

      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'done',
        attempts: 2,
        last_error: null,
      })
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_error: 1,
        dispatch_success: 1,
      })
    })

    it('counts a call that outlives providerTimeoutMs as transient and aborts it', async () => {
      const provider = scriptedProvider(
        'sms',
        () => new Promise<ProviderOutcome>(() => undefined),
      )
      await setup([provider], {
        config: { providerTimeoutMs: 20, leaseMs: 1020 },
      })
      const { id } = await h.parley.send(smsRequest())

      await round()

      expect(provider.calls[0]?.context.signal.aborted).toBe(true)
      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'pending',
        attempts: 1,
        last_error: 'timed out after 20 ms',
      })
      expect(h.metrics.snapshot()).toMatchObject({
        dispatch_attempts: 1,
        dispatch_error: 1,
      })
    })

    it('dead-letters a job whose family lost its provider', async () => {
      await setup([scriptedProvider('sms', () => sent())])
      const { id } = await h.parley.send(smsRequest())

      await round(h.dispatchWorker([]))

      expect(await jobOf(h.db, id)).toMatchObject({
        state: 'dead',
        attempts: 0,
        last_error: 'no_route: no provider for sms',
      })
      expect((await messageRow(h.db, id)).status).toBe('failed')
      expect(h.metrics.snapshot()).toMatchObject({
        invalid_routing: 1,
        dispatch_dead_letter: 1,
        dispatch_attempts: 0,
      })
    })
  })

  describe('metrics', () => {
    it('agree with the attempts stored across a mixed run', async () => {
      const script = new Map<string, ProviderOutcome[]>([
        ['ok', [sent()]],
        ['flaky', [transient, transient, sent()]],
        ['bad', [{ kind: 'permanent', error: '400' }]],
        ['doomed', [transient, transient, transient]],
        ['limited', [{ kind: 'rate_limited', error: '429' }, sent()]],
      ])
      const answer: ScriptedProvider['answer'] = ({ message, context }) =>
        script.get(message.body)?.[context.attempt - 1] ?? transient
      const sms = scriptedProvider('sms', answer)
      const email = scriptedProvider('email', answer)
      await setup([sms, email], {
        random: () => 0.999,
        config: { maxRetries: 2 },
      })
      for (const body of ['ok', 'flaky', 'bad', 'doomed']) {
        await h.parley.send(smsRequest({ body }))
      }
      for (const body of ['ok', 'limited', 'doomed']) {
        await h.parley.send(emailRequest({ body }), { channel: 'email' })
      }
      const worker = h.dispatchWorker()

      for (let i = 0; i < 10; i += 1) {
        await round(worker)
        h.clock.advance(10_000)
      }

      const jobs = await h.db.kysely
        .selectFrom('dispatch_jobs')
        .selectAll()
        .execute()
      const total = (family: string) =>
        jobs
          .filter((job) => family === '*' || job.family === family)
          .reduce((sum, job) => sum + job.attempts, 0)
      const dead = jobs.filter((job) => job.state === 'dead').length
      const done = jobs.filter((job) => job.state === 'done').length
      const snapshot = h.metrics.snapshot()
      expect(
        jobs.every((job) => job.state === 'dead' || job.state === 'done'),
      ).toBe(true)
      expect(snapshot.dispatch_attempts).toBe(total('*'))
      expect(snapshot.dispatch_attempts).toBe(
        sms.calls.length + email.calls.length,
      )
      expect(snapshot.provider_sms_mms_attempts).toBe(total('sms'))
      expect(snapshot.provider_email_attempts).toBe(total('email'))
      expect(snapshot.dispatch_success).toBe(done)
      expect(snapshot.dispatch_dead_letter).toBe(dead)
      expect(snapshot).toMatchObject({
        dispatch_attempts: 1 + 3 + 1 + 3 + 1 + 2 + 3,
        dispatch_success: 4,
        dispatch_rate_limited: 1,
        dispatch_error: 2 + 1 + 3 + 3,
        dispatch_dead_letter: 3,
        provider_sms_mms_success: 2,
        provider_sms_mms_error: 6,
        provider_email_success: 2,
        provider_email_rate_limited: 1,
        provider_email_error: 3,
      })
      expect(
        snapshot.dispatch_success +
          snapshot.dispatch_error +
          snapshot.dispatch_rate_limited,
      ).toBe(snapshot.dispatch_attempts)
    })
  })
})
