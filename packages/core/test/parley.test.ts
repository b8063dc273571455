import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createMockProvider,
  createParley,
  DatabaseRateLimitStore,
  NoRouteError,
  NotFoundError,
  type Parley,
  type ParleyOptions,
  UnavailableError,
  ValidationError,
} from '@parley/core'
import {
  type CountingDb,
  countingDb,
  DIALECT_LABEL,
  emailRequest,
  emailWebhook,
  jobOf,
  ManualClock,
  messageRow,
  plainRows,
  poisonConversations,
  rowCounts,
  smsRequest,
  smsWebhook,
  testDb,
  testStore,
} from './support.js'

const A = '+18045551234'
const B = '+12025550100'

describe(`Parley on ${DIALECT_LABEL}`, () => {
  let db: CountingDb
  let clock: ManualClock
  let parley: Parley

  async function open(overrides: Partial<ParleyOptions> = {}) {
    parley = await createParley({
      db,
      providers: [
        createMockProvider({ family: 'sms' }),
        createMockProvider({ family: 'email' }),
      ],
      clock,
      random: () => 0.5,
      migrate: false,
      ...overrides,
    })
    return parley
  }

  beforeEach(async () => {
    db = countingDb(await testDb())
    clock = new ManualClock()
    await open()
  })

  afterEach(async () => {
    await parley.stop({ graceMs: 0 })
    await db.close()
  })

  describe('send', () => {
    it('stores the conversation, the message and its job in one commit', async () => {
      const result = await parley.send(smsRequest())

      expect(result).toMatchObject({
        id: '1',
        conversationId: '1',
        replayed: false,
      })
      expect(result.rateLimit).toMatchObject({ allowed: true, limit: 60 })
      expect(db.calls).toBe(1)
      expect(await rowCounts(db)).toEqual({
        conversations: 1,
        messages: 1,
        dispatch_jobs: 1,
        inbound_events: 0,
      })
      expect(await jobOf(db, '1')).toMatchObject({
        family: 'sms',
        state: 'pending',
        attempts: 0,
        run_at: clock.iso(),
        locked_until: null,
      })
    })

    it('assigns decimal string ids in order, starting at "1"', async () => {
      const first = await parley.send(smsRequest())
      const second = await parley.send(smsRequest({ to: '+12025550199' }))
      const third = await parley.send(emailRequest(), { channel: 'email' })

      expect(
        [first, second, third].map(({ id, conversationId }) => ({
          id,
          conversationId,
        })),
      ).toEqual([
        { id: '1', conversationId: '1' },
        { id: '2', conversationId: '2' },
        { id: '3', conversationId: '3' },
      ])
    })

    it('keeps the addresses as given and normalizes the conversation', async () => {
      const { id, conversationId } = await parley.send(
        smsRequest({
          from: '(804) 555-1234',
          to: '202.555.0100',
          timestamp: '2024-11-01T10:00:00-04:00',
        }),
      )

      const message = await parley.messages.get(id)
      const { items } = await parley.conversations.list()

      expect(message).toMatchObject({
        id,
        conversationId,
        direction: 'outbound',
        channel: 'sms',
        from: '(804) 555-1234',
        to: '202.555.0100',
        body: 'Hello there',
        snippet: 'Hello there',
        attachments: [],
        timestamp: '2024-11-01T14:00:00.000Z',
        status: 'queued',
        attempts: 0,
        lastError: null,
        nextAttemptAt: clock.iso(),
        provider: null,
        providerMessageId: null,
      })
      expect(items).toEqual([
        {
          id: conversationId,
          key: `sms:${B}<->${A}`,
          channel: 'sms',
          participantA: B,
          participantB: A,
          messageCount: 1,
          lastActivityAt: '2024-11-01T14:00:00.000Z',
        },
      ])
    })

    it('creates one conversation for 50 concurrent first sends between two numbers', async () => {
      const forms = [
        ['(804) 555-1234', B],
        [B, '+18045551234'],
        ['804.555.1234', '(202) 555-0100'],
        ['202-555-0100', '1 804 555 1234'],
        ['+1 804 555 1234', '+1 (202) 555-0100'],
      ]
      const requests = Array.from({ length: 50 }, (_, i) => {
        const [from, to] = forms[i % forms.length] as [string, string]
        return smsRequest({ from, to, body: `message ${i}` })
      })

      const results = await Promise.all(requests.map((r) => parley.send(r)))

      expect(new Set(results.map((r) => r.conversationId))).toEqual(
        new Set(['1']),
      )
      expect(results.map((r) => r.id)).toEqual(
        requests.map((_, i) => String(i + 1)),
      )
      const { items, total } = await parley.conversations.list()
      expect(total).toBe(1)
      expect(items[0]).toMatchObject({
        key: `sms:${B}<->${A}`,
        messageCount: 50,
      })
      expect(parley.metrics.snapshot()).toMatchObject({
        conversations_created: 1,
        conversations_reused: 49,
        conversations_failures: 0,
      })
      expect((await rowCounts(db)).dispatch_jobs).toBe(50)
    })

    it('threads SMS and MMS between the same numbers into one conversation', async () => {
      const sms = await parley.send(smsRequest())
      const mms = await parley.send(
        smsRequest({
          type: 'mms',
          from: B,
          to: A,
          body: '',
          attachments: ['https://cdn.example.com/a.png'],
        }),
      )

      expect(mms.conversationId).toBe(sms.conversationId)
      const page = await parley.conversations.messages(sms.conversationId)
      expect(page.items.map((m) => m.channel)).toEqual(['sms', 'mms'])
      expect(page.items[1]?.attachments).toEqual([
        'https://cdn.example.com/a.png',
      ])
    })

    it('keeps email and SMS conversations apart', async () => {
      const sms = await parley.send(smsRequest())
      const email = await parley.send(emailRequest(), { channel: 'email' })

      expect(email.conversationId).not.toBe(sms.conversationId)
      const { items } = await parley.conversations.list()
      expect(items.map((c) => c.channel).sort()).toEqual(['email', 'sms'])
    })

    it('reads the family from type "email" when no channel is given', async () => {
      const { id } = await parley.send(emailRequest({ type: 'email' }))

      expect((await parley.messages.get(id)).channel).toBe('email')
    })

    it('rejects a request without a usable type or channel', async () => {
      await expect(parley.send(emailRequest())).rejects.toThrow(ValidationError)
      await expect(parley.send(null)).rejects.toThrow(ValidationError)
      expect((await rowCounts(db)).messages).toBe(0)
    })

    it('stores nothing for an invalid request', async () => {
      await expect(
        parley.send(smsRequest({ body: '', to: 'nope' })),
      ).rejects.toSatisfy(
        (error) =>
          error instanceof ValidationError &&
          error.details.map((d) => d.field).join() === 'body,to',
      )
      expect(await rowCounts(db)).toMatchObject({
        conversations: 0,
        messages: 0,
      })
      expect(db.calls).toBe(0)
    })

    it('keeps an HTML email body and subject byte for byte', async () => {
      const body =
        '<!DOCTYPE html>\r\n<html><head><style>p{color:red}</style></head>' +
        '<body><p class="x">Caf\u00e9 &amp; cr\u00e8me\u00a0\u2014 👨‍👩‍👧‍👦</p>' +
        '<script>alert("hi")</script>\n\t  <br/></body></html>\n'

      const { id } = await parley.send(
        emailRequest({
          from: 'Ann <Ann+work@Example.com>',
          subject: '  Re: résumé 🎉  ',
          body,
        }),
        { channel: 'email' },
      )

      const message = await parley.messages.get(id)
      expect(message.body).toBe(body)
      expect(Buffer.from(message.body, 'utf8')).toEqual(
        Buffer.from(body, 'utf8'),
      )
      expect(message.subject).toBe('  Re: résumé 🎉  ')
      expect(message.from).toBe('Ann <Ann+work@Example.com>')
      expect(message.snippet).toBe('Café & crème — 👨‍👩‍👧‍👦')
      const [conversation] = (await parley.conversations.list()).items
      expect(conversation?.participantA).toBe('ann@example.com')
    })

    it('cuts the snippet to the configured length', async () => {
      await parley.stop()
      await open({ config: { snippetLength: 5 } })

      const { id } = await parley.send(smsRequest({ body: 'Hello 👋🏽 there' }))

      expect((await parley.messages.get(id)).snippet).toBe('Hello')
    })

    it('cuts the default snippet at 64 graphemes', async () => {
      const body = '👍🏽'.repeat(100)

      const { id } = await parley.send(smsRequest({ body }))

      expect((await parley.messages.get(id)).snippet).toBe('👍🏽'.repeat(64))
    })

    it('applies the configured default region', async () => {
      await parley.stop()
      await open({ config: { defaultRegion: 'GB' } })

      await parley.send(
        smsRequest({ from: '020 7946 0958', to: '07700 900123' }),
      )

      const [conversation] = (await parley.conversations.list()).items
      expect(conversation?.key).toBe('sms:+442079460958<->+447700900123')
    })

    it('refuses a family without a provider and stores nothing', async () => {
      await parley.stop()
      await open({ providers: [createMockProvider({ family: 'sms' })] })

      const attempt = parley.send(emailRequest(), { channel: 'email' })

      await expect(attempt).rejects.toThrow(NoRouteError)
      await expect(attempt).rejects.toMatchObject({
        code: 'no_route',
        family: 'email',
      })
      expect(await rowCounts(db)).toEqual({
        conversations: 0,
        messages: 0,
        dispatch_jobs: 0,
        inbound_events: 0,
      })
      expect(parley.metrics.snapshot().invalid_routing).toBe(1)
      expect(db.calls).toBe(0)
    })

    it('refuses every send when no provider is configured', async () => {
      await parley.stop()
      await open({ providers: [] })

      await expect(parley.send(smsRequest())).rejects.toThrow(NoRouteError)
      await expect(
        parley.send(emailRequest(), { channel: 'email' }),
      ).rejects.toThrow(NoRouteError)
      expect(parley.metrics.snapshot().invalid_routing).toBe(2)
      expect((await rowCounts(db)).messages).toBe(0)
    })

    it('validates before routing, so a bad request does not count as invalid routing', async () => {
      await parley.stop()
      await open({ providers: [] })

      await expect(parley.send(smsRequest({ body: '' }))).rejects.toThrow(
        ValidationError,
      )
      expect(parley.metrics.snapshot().invalid_routing).toBe(0)
    })

    it('counts a failed conversation upsert and answers unavailable', async () => {
      await poisonConversations(db)

      const attempt = parley.send(smsRequest())

      await expect(attempt).rejects.toThrow(UnavailableError)
      await expect(attempt).rejects.toMatchObject({ code: 'unavailable' })
      expect(parley.metrics.snapshot()).toMatchObject({
        conversations_failures: 1,
        conversations_created: 0,
      })
      expect(await rowCounts(db)).toMatchObject({
        messages: 0,
        dispatch_jobs: 0,
      })
    })
  })

  describe('receive', () => {
    it('queues a webhook payload once per provider id', async () => {
      const first = await parley.receive(smsWebhook(), { channel: 'sms' })
      const again = await parley.receive(
        smsWebhook({ body: 'changed on redelivery' }),
        { channel: 'sms' },
      )

      expect(first).toEqual({ duplicate: false, replayed: false })
      expect(again).toEqual({ duplicate: true, replayed: false })
      const events = plainRows(
        await db.kysely.selectFrom('inbound_events').selectAll().execute(),
      )
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({
        family: 'sms',
        provider_message_id: 'SM-1',
        state: 'pending',
        run_at: clock.iso(),
      })
      expect(JSON.parse(events[0]?.payload ?? '')).toMatchObject({
        body: 'Hello there',
      })
    })

    it('dedupes per family, not across families', async () => {
      await parley.receive(smsWebhook({ messaging_provider_id: 'same' }), {
        channel: 'sms',
      })

      const email = await parley.receive(emailWebhook({ xillio_id: 'same' }), {
        channel: 'email',
      })

      expect(email.duplicate).toBe(false)
      expect((await rowCounts(db)).inbound_events).toBe(2)
    })

    it('accepts an email webhook even when no email provider is configured', async () => {
      await parley.stop()
      await open({ providers: [] })

      await expect(
        parley.receive(emailWebhook(), { channel: 'email' }),
      ).resolves.toEqual({ duplicate: false, replayed: false })
    })

    it('rejects an invalid payload and queues nothing', async () => {
      const payload = smsWebhook()
      delete payload.messaging_provider_id

      await expect(parley.receive(payload, { channel: 'sms' })).rejects.toThrow(
        ValidationError,
      )
      expect((await rowCounts(db)).inbound_events).toBe(0)
    })

    it('validates a payload by the channel it arrived on', async () => {
      await expect(
        parley.receive(smsWebhook(), { channel: 'email' }),
      ).rejects.toSatisfy(
        (error) =>
          error instanceof ValidationError &&
          error.details.map((d) => d.field).join() === 'from,to,xillio_id',
      )
    })
  })

  describe('conversation activity', () => {
    it('keeps last_activity_at at the latest message even out of order', async () => {
      const at = (timestamp: string, body: string) =>
        parley.send(smsRequest({ timestamp, body }))

      const { conversationId } = await at('2024-11-01T14:00:00Z', 'middle')
      await at('2024-11-01T18:00:00+02:00', 'latest, written with an offset')
      await at('2024-11-01T09:00:00Z', 'earliest, arrives last')

      const conversation = (await parley.conversations.list()).items[0]
      expect(conversation?.lastActivityAt).toBe('2024-11-01T16:00:00.000Z')
      expect(conversation?.messageCount).toBe(3)
      const { items } = await parley.conversations.messages(conversationId)
      expect(items.map((m) => m.body)).toEqual([
        'earliest, arrives last',
        'middle',
        'latest, written with an offset',
      ])
    })
  })

  describe('a database that fails to answer', () => {
    // Renaming a table makes every query of it fail, on either dialect,
    // the way a database that went away does; the name is put back after.
    async function withoutTable(table: string, check: () => Promise<void>) {
      const gone = `${table}_gone`
      await sql`alter table ${sql.table(table)} rename to ${sql.table(gone)}`.execute(
        db.kysely,
      )
      try {
        await check()
      } finally {
        await sql`alter table ${sql.table(gone)} rename to ${sql.table(table)}`.execute(
          db.kysely,
        )
      }
    }

    const unavailable = { code: 'unavailable' }

    it('answers every read with UnavailableError, not an internal error', async () => {
      const { id, conversationId } = await parley.send(smsRequest())

      await withoutTable('conversations', async () => {
        await expect(parley.conversations.list()).rejects.toMatchObject(
          unavailable,
        )
        await expect(
          parley.conversations.messages(conversationId),
        ).rejects.toMatchObject(unavailable)
      })
      await withoutTable('messages', async () => {
        await expect(parley.messages.get(id)).rejects.toMatchObject(unavailable)
      })
      await withoutTable('dispatch_jobs', async () => {
        await expect(parley.deadLetters.list('dispatch')).rejects.toThrow(
          UnavailableError,
        )
      })
      expect((await parley.conversations.list()).total).toBe(1)
    })

    it('answers rate-limit checks kept in the database with UnavailableError', async () => {
      await parley.stop({ graceMs: 0 })
      await open({ rateLimitStore: new DatabaseRateLimitStore({ db }) })

      await withoutTable('rate_limit_buckets', async () => {
        await expect(parley.send(smsRequest())).rejects.toMatchObject(
          unavailable,
        )
        await expect(
          parley.ingress.limitClient('203.0.113.9', 'api'),
        ).rejects.toMatchObject(unavailable)
      })
      await expect(parley.send(smsRequest())).resolves.toMatchObject({
        replayed: false,
      })
    })
  })

  describe('timestamps at the edges of the accepted range', () => {
    it('stores and returns the first and last instants of years 0001-9999, in order', async () => {
      const at = (timestamp: string, body: string) =>
        parley.send(smsRequest({ timestamp, body }))

      await at('9999-12-31T23:59:59.999Z', 'last')
      const { conversationId } = await at('0001-01-01T00:00:00Z', 'first')
      await at('0001-01-01T00:00:00-01:00', 'second, with an offset')

      const { items } = await parley.conversations.messages(conversationId)
      expect(items.map((m) => [m.body, m.timestamp])).toEqual([
        ['first', '0001-01-01T00:00:00.000Z'],
        ['second, with an offset', '0001-01-01T01:00:00.000Z'],
        ['last', '9999-12-31T23:59:59.999Z'],
      ])
      const conversation = (await parley.conversations.list()).items[0]
      expect(conversation?.lastActivityAt).toBe('9999-12-31T23:59:59.999Z')
    })
  })

  describe('listing', () => {
    async function seedConversations() {
      // Conversation ids 1..4 with activity at 10:00, 12:00, 12:00, 11:00.
      const times = ['10:00', '12:00', '12:00', '11:00']
      for (const [i, time] of times.entries()) {
        await parley.send(
          smsRequest({
            to: `+1202555010${i}`,
            timestamp: `2024-11-01T${time}:00Z`,
          }),
        )
      }
    }

    it('orders conversations by last activity, newest first, then by id', async () => {
      await seedConversations()

      const { items, total, page, pageSize } = await parley.conversations.list()

      expect(items.map((c) => c.id)).toEqual(['2', '3', '4', '1'])
      expect({ total, page, pageSize }).toEqual({
        total: 4,
        page: 1,
        pageSize: 50,
      })
    })

    it('pages conversations', async () => {
      await seedConversations()

      const pages = await Promise.all(
        [1, 2, 3].map((page) =>
          parley.conversations.list({ page, pageSize: 2 }),
        ),
      )

      expect(pages.map((p) => p.items.map((c) => c.id))).toEqual([
        ['2', '3'],
        ['4', '1'],
        [],
      ])
      expect(pages.every((p) => p.total === 4 && p.pageSize === 2)).toBe(true)
    })

    it('orders messages by timestamp, oldest first, then by id', async () => {
      const send = (timestamp: string, body: string) =>
        parley.send(smsRequest({ timestamp, body }))
      const { conversationId } = await send('2024-11-01T12:00:00Z', 'b1')
      await send('2024-11-01T11:00:00Z', 'a')
      await send('2024-11-01T12:00:00.000Z', 'b2')
      await parley.receive(
        smsWebhook({
          from: B,
          to: A,
          body: 'not threaded yet',
          messaging_provider_id: 'SM-9',
        }),
        { channel: 'sms' },
      )

      const { items, total } =
        await parley.conversations.messages(conversationId)

      expect(items.map((m) => m.body)).toEqual(['a', 'b1', 'b2'])
      expect(total).toBe(3)
      const second = await parley.conversations.messages(conversationId, {
        page: 2,
        pageSize: 2,
      })
      expect(second.items.map((m) => m.body)).toEqual(['b2'])
    })

    it('reads page size 0 as the default of 50 and clamps sizes over 200', async () => {
      for (let i = 0; i < 3; i += 1) await parley.send(smsRequest())

      const zero = await parley.conversations.list({ pageSize: 0 })
      const huge = await parley.conversations.messages('1', {
        pageSize: 10_000,
      })

      expect(zero.pageSize).toBe(50)
      expect(huge.pageSize).toBe(200)
      expect(huge.items).toHaveLength(3)
      expect(
        (await parley.conversations.list({ pageSize: 200 })).pageSize,
      ).toBe(200)
    })

    it('returns an empty page past the end', async () => {
      await parley.send(smsRequest())

      const page = await parley.conversations.list({ page: 99 })

      expect(page).toMatchObject({ items: [], total: 1, page: 99 })
    })

    it.each([
      [{ page: 0 }, ['page']],
      [{ page: -1 }, ['page']],
      [{ page: 1.5 }, ['page']],
      [{ page: Number.NaN }, ['page']],
      [{ page: 1_000_000_001 }, ['page']],
      [{ pageSize: -1 }, ['pageSize']],
      [{ pageSize: 2.5 }, ['pageSize']],
      [{ pageSize: Infinity }, ['pageSize']],
      [{ page: 0, pageSize: -5 }, ['page', 'pageSize']],
    ])('rejects the page request %j', async (request, fields) => {
      await parley.send(smsRequest())

      for (const list of [
        () => parley.conversations.list(request),
        () => parley.conversations.messages('1', request),
      ]) {
        await expect(list()).rejects.toSatisfy(
          (error) =>
            error instanceof ValidationError &&
            error.details.map((d) => d.field).join() === fields.join(),
        )
      }
    })

    it('rejects a page number that is not a number at all', async () => {
      await expect(
        parley.conversations.list({ page: '2' as unknown as number }),
      ).rejects.toThrow(ValidationError)
    })
  })

  describe('unknown ids', () => {
    const unknownIds = [
      '2',
      '999',
      '0',
      '01',
      '-1',
      '1.0',
      ' 1',
      '1e3',
      'abc',
      '',
      '9007199254740993',
      '99999999999999999999999999',
      "1' or '1'='1",
    ]

    it.each(unknownIds)('reads the message id %j as not found', async (id) => {
      await parley.send(smsRequest())

      await expect(parley.messages.get(id)).rejects.toThrow(NotFoundError)
      await expect(parley.messages.get(id)).rejects.toMatchObject({
        code: 'not_found',
      })
    })

    it.each(unknownIds)(
      'reads the conversation id %j as not found',
      async (id) => {
        await parley.send(smsRequest())

        await expect(parley.conversations.messages(id)).rejects.toThrow(
          NotFoundError,
        )
      },
    )

    it('checks the page request before the conversation id', async () => {
      await expect(
        parley.conversations.messages('999', { pageSize: -1 }),
      ).rejects.toThrow(ValidationError)
    })
  })

  describe('lifecycle', () => {
    it('is ready when the database answers and the schema is current', async () => {
      expect(await parley.readiness()).toEqual({ ready: true })
    })

    it('is not ready with an unmigrated database', async () => {
      const bare = await testDb({ migrate: false })
      try {
        const unmigrated = await createParley({
          db: bare,
          providers: [],
          migrate: false,
        })
        expect(await unmigrated.readiness()).toEqual({
          ready: false,
          reason: 'database schema is not current',
        })
      } finally {
        await bare.close()
      }
    })

    it('is not ready when the database holds a migration this code does not know', async () => {
      await sql`insert into parley_migrations (name, timestamp) values (${'9999_from_a_newer_version'}, ${new Date().toISOString()})`.execute(
        db.kysely,
      )
      expect(await parley.readiness()).toEqual({
        ready: false,
        reason: 'database schema is not current',
      })
    })

    it('is not ready when one of its tables is missing (idempotency_keys)', async () => {
      await sql`drop table idempotency_keys`.execute(db.kysely)
      expect(await parley.readiness()).toEqual({
        ready: false,
        reason: 'database schema is not current',
      })
    })

    it('refuses new work and reports not ready once stopping', async () => {
      await parley.stop()

      await expect(parley.send(smsRequest())).rejects.toThrow(UnavailableError)
      await expect(
        parley.receive(smsWebhook(), { channel: 'sms' }),
      ).rejects.toThrow(UnavailableError)
      expect(await parley.readiness()).toEqual({
        ready: false,
        reason: 'shutting down',
      })
    })

    it('still serves reads after stopping', async () => {
      const { id } = await parley.send(smsRequest())
      await parley.stop()

      expect((await parley.messages.get(id)).id).toBe(id)
    })
  })
})

describe(`Parley with running workers on ${DIALECT_LABEL}`, () => {
  it('delivers sends and threads webhooks once started', async () => {
    const db = await testDb()
    const parley = await createParley({
      db,
      providers: [
        createMockProvider({ family: 'sms' }),
        createMockProvider({ family: 'email' }),
      ],
      config: { pollIntervalMs: 10 },
      migrate: false,
    })
    try {
      await parley.start()
      const sms = await parley.send(smsRequest({ from: '(804) 555-1234' }))
      const email = await parley.send(emailRequest(), { channel: 'email' })
      await parley.receive(smsWebhook({ from: B, to: A }), { channel: 'sms' })

      await vi.waitFor(
        async () => {
          expect((await parley.messages.get(sms.id)).status).toBe('sent')
          expect((await parley.messages.get(email.id)).status).toBe('sent')
          expect(
            (await parley.conversations.messages(sms.conversationId)).total,
          ).toBe(2)
          // Counted once the commit is durable, a moment after it reads back.
          expect(parley.metrics.snapshot().worker_processed).toBe(1)
        },
        { timeout: 5000, interval: 10 },
      )

      const sent = await parley.messages.get(sms.id)
      expect(sent).toMatchObject({
        provider: 'mock-sms',
        providerMessageId: `mock-sms-${sms.id}-1`,
        attempts: 1,
        nextAttemptAt: null,
      })
      const { items } = await parley.conversations.messages(sms.conversationId)
      expect(items[1]).toMatchObject({
        direction: 'inbound',
        status: 'received',
        from: B,
      })
      const inbound = await parley.messages.get(items[1]?.id ?? '')
      expect(inbound.providerMessageId).toBe('SM-1')
      expect(parley.metrics.snapshot()).toMatchObject({
        dispatch_attempts: 2,
        dispatch_success: 2,
        provider_sms_mms_success: 1,
        provider_email_success: 1,
        worker_claimed: 1,
        worker_processed: 1,
        conversations_created: 2,
        conversations_reused: 1,
      })
    } finally {
      expect(await parley.stop({ graceMs: 1000 })).toBe(true)
      await db.close()
    }
  })

  it('starts only once and stops cleanly without work', async () => {
    const db = await testDb()
    const parley = await createParley({ db, providers: [], migrate: false })
    await parley.start()
    await parley.start()

    expect(await parley.stop()).toBe(true)
    await db.close()
  })
})

describe(`Parley restarted on ${DIALECT_LABEL}`, () => {
  it('keeps queued work across a restart', async () => {
    const store = await testStore()
    try {
      const first = store.open()
      const before = await createParley({
        db: first,
        providers: [createMockProvider({ family: 'sms' })],
      })
      const { id } = await before.send(smsRequest())
      await before.receive(smsWebhook(), { channel: 'sms' })
      await first.close()

      const second = store.open()
      const after = await createParley({
        db: second,
        providers: [createMockProvider({ family: 'sms' })],
      })
      expect((await after.messages.get(id)).status).toBe('queued')
      expect(await jobOf(second, id)).toMatchObject({ state: 'pending' })
      expect((await rowCounts(second)).inbound_events).toBe(1)
      expect((await messageRow(second, id)).body).toBe('Hello there')
      await second.close()
    } finally {
      await store.remove()
    }
  })
})
