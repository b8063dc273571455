import { beforeAll, describe, expect, it } from 'vitest'

import {
  answerAlways,
  answerByRoute,
  deadServerUrl,
  emptyPage,
  lastRequest,
  useFakeServer,
} from './fake-server.js'
import {
  assertBuilt,
  expectNoServer,
  expectUsageError,
  runCli,
} from './run-cli.js'

/** A terminal as wide as the one the expected tables were laid out for. */
const wide = { COLUMNS: '80' }

const dispatchPage = {
  items: [
    {
      queue: 'dispatch',
      id: '7',
      message_id: '31',
      provider_message_id: null,
      attempts: 9,
      last_error: 'mock provider: 500 server error',
      failed_at: '2024-11-01T14:04:16.613Z',
    },
    {
      queue: 'dispatch',
      id: '12',
      message_id: '40',
      provider_message_id: null,
      attempts: 1,
      last_error:
        'twilio: 400 The To number +15550002222 is not a valid mobile number',
      failed_at: '2024-11-01T13:58:02.001Z',
    },
  ],
  meta: { page: 1, page_size: 2, total: 3 },
}

const inboundPage = {
  items: [
    {
      queue: 'inbound',
      id: '5',
      message_id: null,
      provider_message_id: 'SM42',
      attempts: 9,
      last_error: null,
      failed_at: '2024-11-01T14:00:00.000Z',
    },
  ],
  meta: { page: 2, page_size: 2, total: 3 },
}

const retried = { status: 'accepted', queue: 'dispatch', id: '7' }

const noSuchDeadLetter = {
  status: 404,
  body: {
    code: 'not_found',
    message: 'no dead letter in dispatch with id 99',
    request_id: 'r-99',
  },
}

beforeAll(assertBuilt)

const server = useFakeServer(
  answerByRoute({
    'GET /api/dead-letters': { status: 200, body: dispatchPage },
    'POST /api/dead-letters/dispatch/7/retry': { status: 202, body: retried },
    'POST /api/dead-letters/dispatch/99/retry': noSuchDeadLetter,
  }),
)

/** The flag that points the CLI at the fake server. */
const at = () => ['--url', server.url]

describe('parley dead-letters', () => {
  it('lists the dispatch queue by default as a table cut to the terminal', async () => {
    const result = await runCli(['dead-letters', ...at()], wide)

    expect(lastRequest(server)).toMatchObject({
      method: 'GET',
      url: '/api/dead-letters?queue=dispatch',
      body: '',
    })
    expect(result).toEqual({
      code: 0,
      stdout: [
        'ID  MESSAGE  ATTEMPTS  FAILED AT                 LAST ERROR',
        ' 7       31         9  2024-11-01T14:04:16.613Z  mock provider: 500 server error',
        '12       40         1  2024-11-01T13:58:02.001Z  twilio: 400 The To number +155…',
        '',
        'page 1 of 2, 3 dispatch dead letters in all (next: --page 2)',
        '',
      ].join('\n'),
      stderr: '',
    })
  })

  it('keeps every line within the width of the terminal', async () => {
    const result = await runCli(['dead-letters', ...at()], { COLUMNS: '64' })

    const [heading, ...rows] = result.stdout.split('\n').slice(0, 3)
    expect(rows.map((row) => row.length)).toEqual([64, 64])
    expect(heading).toBe(
      'ID  MESSAGE  ATTEMPTS  FAILED AT                 LAST ERROR',
    )
    expect(rows).toEqual([
      ' 7       31         9  2024-11-01T14:04:16.613Z  mock provider:…',
      '12       40         1  2024-11-01T13:58:02.001Z  twilio: 400 Th…',
    ])
  })

  it('fits 80 columns when the width is unknown', async () => {
    const result = await runCli(['dead-letters', ...at()], { COLUMNS: '' })

    const lines = result.stdout.split('\n')
    expect(lines[2]).toBe(
      '12       40         1  2024-11-01T13:58:02.001Z  twilio: 400 The To number +155…',
    )
    expect(Math.max(...lines.map((line) => line.length))).toBe(80)
  })

  it('asks for the inbound queue and a page, and shows provider ids', async () => {
    server.answerWith(answerAlways(200, inboundPage))

    const result = await runCli(
      [
        'dead-letters',
        '--queue',
        'inbound',
        '--page',
        '2',
        '--page-size',
        '2',
        ...at(),
        '--api-key',
        'secret-key',
      ],
      wide,
    )

    const request = lastRequest(server)
    expect(request.url).toBe(
      '/api/dead-letters?queue=inbound&page=2&pageSize=2',
    )
    expect(request.headers.authorization).toBe('Bearer secret-key')
    expect(result.stdout).toBe(
      [
        'ID  PROVIDER ID  ATTEMPTS  FAILED AT                 LAST ERROR',
        ' 5  SM42                9  2024-11-01T14:00:00.000Z',
        '',
        'page 2 of 2, 3 inbound dead letters in all',
        '',
      ].join('\n'),
    )
  })

  it('takes the same options after the list command', async () => {
    server.answerWith(answerAlways(200, inboundPage))

    const result = await runCli(
      ['dead-letters', 'list', '--queue', 'inbound', ...at()],
      wide,
    )

    expect(result.code).toBe(0)
    expect(lastRequest(server).url).toBe('/api/dead-letters?queue=inbound')
  })

  it("prints only the server's document with --json, errors uncut", async () => {
    const result = await runCli(['dead-letters', ...at(), '--json'], {
      COLUMNS: '40',
    })

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(result.stdout).toMatch(/^\{\n[^]*\n\}\n$/)
    expect(JSON.parse(result.stdout)).toEqual(dispatchPage)
  })

  it('says when a queue holds no dead letters', async () => {
    server.answerWith(answerAlways(200, emptyPage))

    const result = await runCli(['dead-letters', ...at()])

    expect(result.stdout).toBe(
      'no dispatch dead letters here; page 1 of 1, 0 dispatch dead letters in all\n',
    )
  })

  it('reports an answer that is not a list', async () => {
    server.answerWith(answerAlways(200, { status: 'ok' }))

    const result = await runCli(['dead-letters', ...at()])

    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `error: unexpected answer from ${server.url} (HTTP 200): ` +
        'not a list of items — is it a Parley server?\n',
    })
  })
})

describe('parley dead-letters retry', () => {
  it('posts the replay without a body and confirms it', async () => {
    const result = await runCli([
      'dead-letters',
      'retry',
      'dispatch',
      '7',
      ...at(),
    ])

    const request = lastRequest(server)
    expect(request.method).toBe('POST')
    expect(request.url).toBe('/api/dead-letters/dispatch/7/retry')
    expect(request.body).toBe('')
    expect(request.headers.accept).toBe('application/json')
    expect(result).toEqual({
      code: 0,
      stdout:
        'dead letter 7 is back in the dispatch queue with a fresh attempt count\n',
      stderr: '',
    })
  })

  it("prints only the server's document with --json", async () => {
    const result = await runCli([
      'dead-letters',
      'retry',
      'dispatch',
      '7',
      '--json',
      ...at(),
    ])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual(retried)
  })

  it("prints the server's error and exits 1 on an unknown id", async () => {
    const result = await runCli([
      'dead-letters',
      'retry',
      'dispatch',
      '99',
      ...at(),
    ])

    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'error: not_found: no dead letter in dispatch with id 99\n' +
        'hint: list them with `parley dead-letters --queue dispatch`\n' +
        '(request id: r-99)\n',
    })
  })
})

describe('dead-letters usage and connection errors', () => {
  it.each([
    [
      'a queue that does not exist',
      ['dead-letters', '--queue', 'outbound'],
      "argument 'outbound' is invalid. Allowed choices are dispatch, inbound.",
    ],
    [
      'a bad page size',
      ['dead-letters', '--page-size', '-1'],
      'expected a whole number',
    ],
    [
      'a replay from a queue that does not exist',
      ['dead-letters', 'retry', 'outbound', '7'],
      "unknown queue 'outbound'; expected dispatch or inbound",
    ],
    [
      'a replay id that is not digits',
      ['dead-letters', 'retry', 'dispatch', '../../metrics'],
      'decimal digits',
    ],
    [
      'a replay without an id',
      ['dead-letters', 'retry', 'dispatch'],
      "id 'dispatch' is not an id",
    ],
    [
      'list options given before retry',
      ['dead-letters', '--json', 'retry', 'dispatch', '7'],
      'too many arguments',
    ],
    [
      'an unknown option',
      ['dead-letters', 'retry', 'dispatch', '7', '--force'],
      "unknown option '--force'",
    ],
  ])('exits 2 before any request on %s', async (_, args, message) => {
    const result = await runCli(args, { PARLEY_URL: server.url })

    expectUsageError(result, args, message)
    expect(server.requests).toEqual([])
  })

  it.each([[['dead-letters']], [['dead-letters', 'retry', 'inbound', '5']]])(
    'explains how to start a server when nothing answers %j',
    async (args) => {
      const url = await deadServerUrl()

      const result = await runCli([...args, '--url', url])

      expectNoServer(result, args, url)
    },
  )
})
