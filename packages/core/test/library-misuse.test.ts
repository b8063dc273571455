/**
 * Calls a JavaScript caller can get wrong, which TypeScript would have
 * caught: each fails at once with an error that names what is wrong,
 * stores nothing, and (for the calls) is a ParleyError like every refusal.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMockProvider,
  createParley,
  createSendGridProvider,
  createTwilioProvider,
  isValidationError,
  type Parley,
  type ParleyDatabase,
  silentLogger,
} from '@parley/core'
import { openPostgres } from '@parley/core/postgres'
import { openSqlite } from '@parley/core/sqlite'
import {
  emailRequest,
  emailWebhook,
  memoryDb,
  smsRequest,
  smsWebhook,
} from './support.js'

const mocks = () => [
  createMockProvider({ family: 'sms' }),
  createMockProvider({ family: 'email' }),
]

let db: ParleyDatabase | undefined
let parley: Parley | undefined

afterEach(async () => {
  await parley?.stop()
  await db?.close()
  parley = undefined
  db = undefined
})

async function instance(): Promise<Parley> {
  db = await memoryDb()
  parley = await createParley({ db, providers: mocks(), migrate: false })
  return parley
}

async function details(call: () => Promise<unknown>) {
  const error = await call().then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(isValidationError(error), String(error)).toBe(true)
  return (error as { details: unknown }).details
}

async function stored(): Promise<number> {
  const row = await db!.kysely
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow()
  const events = await db!.kysely
    .selectFrom('inbound_events')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n) + Number(events.n)
}

describe('calls with options of the wrong shape', () => {
  it.each([
    ['an unknown channel', { channel: 'fax' }],
    ['a channel in capitals', { channel: 'EMAIL' }],
    ['a null channel', { channel: null }],
  ])('refuses a send with %s, naming the channel', async (_, options) => {
    const p = await instance()

    for (const request of [smsRequest(), emailRequest()]) {
      expect(await details(() => p.send(request, options as never))).toEqual([
        { field: 'channel', message: 'must be "sms" or "email"' },
      ])
    }
    expect(await stored()).toBe(0)
  })

  it.each([
    ['no options', undefined, 'channel', 'is required'],
    [
      'an unknown channel',
      { channel: 'fax' },
      'channel',
      'must be "sms" or "email"',
    ],
    ['options that are a string', 'email', '(options)', 'must be an object'],
  ])('refuses a webhook with %s', async (_, options, field, message) => {
    const p = await instance()

    for (const payload of [smsWebhook(), emailWebhook()]) {
      const call = () => p.receive(payload, options as never)
      expect(await details(call)).toEqual(
        options === undefined
          ? [{ field: '(options)', message: 'must be an object' }]
          : [{ field, message }],
      )
    }
    expect(await stored()).toBe(0)
  })

  it.each([null, 'email', 42])(
    'refuses a send whose options are %j',
    async (options) => {
      const p = await instance()

      expect(
        await details(() => p.send(smsRequest(), options as never)),
      ).toEqual([{ field: '(options)', message: 'must be an object' }])
      expect(await stored()).toBe(0)
    },
  )

  it.each([123, true, { key: 'k' }])(
    'refuses an idempotency key that is not a string: %j',
    async (key) => {
      const p = await instance()

      const call = () => p.send(smsRequest(), { idempotencyKey: key as never })
      expect(await details(call)).toEqual([
        {
          field: 'Idempotency-Key',
          message: 'must be 1 to 255 visible ASCII characters',
        },
      ])
      expect(await stored()).toBe(0)
    },
  )
})

describe('calls with misspelt or mistyped options', () => {
  it.each([
    [
      'idempotencykey',
      { idempotencykey: 'abc' },
      '(options).idempotencykey',
      'is not an option',
    ],
    ['Channel', { Channel: 'sms' }, '(options).Channel', 'is not an option'],
    [
      'an object as idempotencyScope',
      { idempotencyKey: 'k', idempotencyScope: {} },
      '(options).idempotencyScope',
      'must be a string',
    ],
    [
      'a number as requestId',
      { requestId: 7 },
      '(options).requestId',
      'must be a string',
    ],
    [
      'a BigInt as idempotencyBody',
      { idempotencyKey: 'k', idempotencyBody: 10n },
      '(options).idempotencyBody',
      'must be JSON data',
    ],
  ])(
    'refuses a send with %s, storing nothing',
    async (_, options, field, message) => {
      const p = await instance()

      expect(
        await details(() => p.send(smsRequest(), options as never)),
      ).toEqual([{ field, message }])
      expect(await stored()).toBe(0)
    },
  )

  it('refuses a webhook with a misspelt option', async () => {
    const p = await instance()

    const call = () =>
      p.receive(smsWebhook(), { channel: 'sms', idempotency_key: 'k' } as never)
    expect(await details(call)).toEqual([
      { field: '(options).idempotency_key', message: 'is not an option' },
    ])
    expect(await stored()).toBe(0)
  })
})

describe('factories given a misspelt option', () => {
  it.each([
    [
      'createTwilioProvider',
      () =>
        createTwilioProvider({
          accountSid: 'AC1',
          authToken: 't',
          baseURL: 'http://127.0.0.1:2',
        } as never),
      'createTwilioProvider: baseURL is not an option (did you mean baseUrl?)',
    ],
    [
      'createSendGridProvider',
      () =>
        createSendGridProvider({
          apiKey: 'SG.k',
          baseURL: 'http://127.0.0.1:2',
        } as never),
      'createSendGridProvider: baseURL is not an option (did you mean baseUrl?)',
    ],
    [
      'createMockProvider',
      () => createMockProvider({ family: 'sms', seeds: 1 } as never),
      'createMockProvider: seeds is not an option',
    ],
    [
      'openSqlite',
      () => openSqlite({ filename: ':memory:', synchronus: 'NORMAL' } as never),
      'openSqlite: synchronus is not an option',
    ],
    [
      'openPostgres',
      () =>
        openPostgres({
          connectionString: 'postgres://postgres@127.0.0.1:1/none',
          Schema: 'x',
        } as never),
      'openPostgres: Schema is not an option (did you mean schema?)',
    ],
    [
      'createParley',
      () => createParley({ providers: [], Migrate: false } as never),
      'createParley: Migrate is not an option (did you mean migrate?)',
    ],
  ])(
    '%s refuses it by name, before using any option',
    async (_, build, message) => {
      await expect(async () => build()).rejects.toThrow(new RangeError(message))
    },
  )

  it.each([
    ['createTwilioProvider', () => createTwilioProvider(undefined as never)],
    ['createMockProvider', () => createMockProvider(undefined as never)],
    ['openSqlite', () => openSqlite(undefined as never)],
    ['openPostgres', () => openPostgres(null as never)],
  ])('%s refuses options that are not an object', (name, build) => {
    expect(build).toThrow(new TypeError(`${name}: options must be an object`))
  })
})

describe('createParley with options of the wrong shape', () => {
  const noSend = (): undefined => undefined
  it.each([
    ['no options', () => undefined, 'createParley: options must be an object'],
    [
      'no database',
      () => ({ providers: [] }),
      'createParley: db must be a ParleyDatabase (from openSqlite, openPostgres or openNodeSqlite)',
    ],
    [
      'providers that are not an array',
      (db: ParleyDatabase) => ({ db, providers: 'mock' }),
      'createParley: providers must be an array of providers',
    ],
    [
      'a provider without send',
      (db: ParleyDatabase) => ({
        db,
        providers: [{ name: 'x', family: 'sms' }],
      }),
      'createParley: providers[0].send must be a function',
    ],
    [
      'a provider of an unknown family',
      (db: ParleyDatabase) => ({
        db,
        providers: [{ name: 'x', family: 'fax', send: noSend }],
      }),
      'createParley: providers[0].family must be "sms" or "email", got "fax"',
    ],
    [
      'a provider without a name',
      (db: ParleyDatabase) => ({
        db,
        providers: [...mocks(), { family: 'sms', send: noSend }],
      }),
      'createParley: providers[2].name must be a non-empty string',
    ],
  ])('refuses %s, naming the option', async (_, options, message) => {
    db = await memoryDb()

    await expect(createParley(options(db) as never)).rejects.toThrow(message)
  })
})

describe('an instance on a database that was never migrated', () => {
  it('refuses calls as unavailable and still stops, logging what it could not release', async () => {
    db = openSqlite({ filename: ':memory:' })
    const warnings: string[] = []
    const logger = {
      ...silentLogger,
      warn: (event: string) => warnings.push(event),
    }
    parley = await createParley({
      db,
      providers: mocks(),
      migrate: false,
      logger,
    })
    await parley.start()

    await expect(parley.send(smsRequest())).rejects.toMatchObject({
      code: 'unavailable',
    })
    await expect(parley.stop()).resolves.toBe(true)
    expect(warnings).toContain('inbound.release_failed')
    parley = undefined
  })
})
