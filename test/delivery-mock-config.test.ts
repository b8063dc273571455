/**
 * `GET` and `PUT /api/provider/mock/config` against the real server
 * process: the shape of the live settings, validation that names every bad
 * field and changes nothing, and changes scoped to one family.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { get, request } from './helpers/http.js'
import {
  detailFields,
  expectCommonHeaders,
  expectError,
} from './helpers/parley.js'
import {
  cleanUpServers,
  type ServerProcess,
  startServerProcess,
} from './helpers/server-process.js'

afterAll(cleanUpServers)

const PATH = '/api/provider/mock/config'

const INITIAL = {
  sms: {
    providers: ['mock-sms', 'mock-sms-b'],
    timeout_pct: 0,
    error_pct: 0,
    ratelimit_pct: 0,
    seed: 7,
    retry_after_secs: 1,
  },
  email: {
    providers: ['mock-email'],
    timeout_pct: 5,
    error_pct: 10,
    ratelimit_pct: 15,
    seed: 99,
    retry_after_secs: 1,
  },
}

describe('the mock provider settings over HTTP', () => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess({
      env: {
        API_SMS_PROVIDERS: 'mock,mock-b',
        API_PROVIDER_SEED: '7',
        API_PROVIDER_EMAIL_SEED: '99',
        API_PROVIDER_EMAIL_TIMEOUT_PCT: '5',
        API_PROVIDER_EMAIL_ERROR_PCT: '10',
        API_PROVIDER_EMAIL_RATELIMIT_PCT: '15',
      },
    })
  })

  const put = (body: unknown) =>
    request(server.url, PATH, { method: 'PUT', body })

  async function current() {
    const response = await get(server.url, PATH)
    expect(response.status, response.text).toBe(200)
    return response.body
  }

  /** Puts the starting settings back, whatever a test changed. */
  async function reset(): Promise<void> {
    const { providers: _s, ...sms } = INITIAL.sms
    const { providers: _e, ...email } = INITIAL.email
    expect((await put({ sms, email })).status).toBe(200)
  }

  it('shows each family’s live settings, read from the environment', async () => {
    const response = await get(server.url, PATH)

    expect(response.status).toBe(200)
    expectCommonHeaders(response.headers)
    expect(response.body).toEqual(INITIAL)
  })

  it('changes one family and leaves the other alone', async () => {
    const response = await put({ email: { error_pct: 50, seed: 1 } })

    expect(response.status, response.text).toBe(200)
    const wanted = {
      sms: INITIAL.sms,
      email: { ...INITIAL.email, error_pct: 50, seed: 1 },
    }
    expect(response.body).toEqual(wanted)
    expect(await current()).toEqual(wanted)
    await reset()
  })

  it('applies top-level fields to both families, a family’s own fields winning', async () => {
    const response = await put({
      ratelimit_pct: 3,
      retry_after_secs: 2,
      sms: { ratelimit_pct: 4 },
    })

    expect(response.status, response.text).toBe(200)
    expect(response.body).toEqual({
      sms: { ...INITIAL.sms, ratelimit_pct: 4, retry_after_secs: 2 },
      email: { ...INITIAL.email, ratelimit_pct: 3, retry_after_secs: 2 },
    })
    await reset()
  })

  const invalid: Array<[string, unknown, string[]]> = [
    ['a fraction', { sms: { error_pct: 1.5 } }, ['sms.error_pct']],
    ['a numeric string', { sms: { timeout_pct: '10' } }, ['sms.timeout_pct']],
    ['null', { email: { seed: null } }, ['email.seed']],
    ['a boolean at the top', { error_pct: true }, ['error_pct']],
    [
      // Named on its own; the sum counts only the valid percentages.
      'a percentage over 100 for both families',
      { error_pct: 101 },
      ['email.error_pct', 'sms.error_pct'],
    ],
    [
      'a negative percentage',
      { sms: { ratelimit_pct: -1 } },
      ['sms.ratelimit_pct'],
    ],
    [
      'percentages adding up to over 100',
      { sms: { timeout_pct: 50, error_pct: 50, ratelimit_pct: 1 } },
      ['sms'],
    ],
    [
      'a change that pushes the other percentages over 100',
      { email: { timeout_pct: 80 } },
      ['email'],
    ],
    [
      'a seed out of range',
      { seed: 4_294_967_296 },
      ['email.seed', 'sms.seed'],
    ],
    [
      'a Retry-After over an hour',
      { sms: { retry_after_secs: 3601 } },
      ['sms.retry_after_secs'],
    ],
    ['a family that is not an object', { sms: 5 }, ['sms']],
    ['a body that is not an object', [1, 2], ['(body)']],
    [
      'several bad fields at once',
      { sms: { error_pct: 'x', timeout_pct: 0.5 }, email: { seed: 'y' } },
      ['email.seed', 'sms.error_pct', 'sms.timeout_pct'],
    ],
    [
      'bad types beside bad ranges and a sum over 100',
      {
        error_pct: 50,
        timeout_pct: 60,
        sms: { seed: -1 },
        email: 5,
        ratelimit_pct: 1.5,
      },
      ['email', 'ratelimit_pct', 'sms', 'sms.seed'],
    ],
  ]

  it.each(invalid)(
    'refuses %s with 400 naming the fields, changing nothing',
    async (_, body, fields) => {
      const response = await put(body)

      expectError(response, 400, 'validation_failed')
      expect(detailFields(response.body).sort()).toEqual(fields)
      expect(await current()).toEqual(INITIAL)
    },
  )

  it('refuses a body that is not JSON', async () => {
    expectError(await put('{"sms":'), 400, 'invalid_json')
    expect(await current()).toEqual(INITIAL)
  })

  it('ignores unknown fields', async () => {
    const response = await put({ sms: { colour: 'blue' }, speed: 3 })

    expect(response.status, response.text).toBe(200)
    expect(response.body).toEqual(INITIAL)
  })
})

describe('the mock provider settings without mock providers', () => {
  it('answers 404 when no mock provider is configured', async () => {
    const server = await startServerProcess({
      env: { API_SMS_PROVIDERS: 'none', API_EMAIL_PROVIDERS: 'none' },
    })

    expectError(await get(server.url, PATH), 404, 'not_found')
    expectError(
      await request(server.url, PATH, {
        method: 'PUT',
        body: { error_pct: 1 },
      }),
      404,
      'not_found',
    )
  })
})
