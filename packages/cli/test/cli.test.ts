import { readFileSync } from 'node:fs'

import { beforeAll, describe, expect, it } from 'vitest'

import {
  answerAlways,
  deadServerUrl,
  emptyPage,
  lastRequest,
  useFakeServer,
} from './fake-server.js'
import { attachFlags, phones, twoMedia } from './message-flags.js'
import {
  assertBuilt,
  binPath,
  expectNoServer,
  expectUsageError,
  runCli,
} from './run-cli.js'

const accepted = { status: 'accepted', id: '12', conversation_id: '3' }

beforeAll(assertBuilt)

const server = useFakeServer(answerAlways(202, accepted))

/** The flag that points the CLI at the fake server. */
const at = () => ['--url', server.url]

describe('parley send', () => {
  it('posts an SMS with every field and prints the ids', async () => {
    const before = Date.now()
    const result = await runCli([
      'send',
      'sms',
      ...at(),
      ...phones,
      '--body',
      'hi there',
    ])

    const request = lastRequest(server)
    expect(result).toEqual({
      code: 0,
      stdout: 'accepted message 12 (conversation 3)\n',
      stderr: '',
    })
    expect(request.method).toBe('POST')
    expect(request.url).toBe('/api/messages/sms')
    expect(request.headers['content-type']).toMatch(/^application\/json/)
    expect(request.headers.accept).toBe('application/json')
    expect(request.headers['user-agent']).toMatch(/^parley-cli\/\d/)
    expect(request.headers.authorization).toBeUndefined()
    expect(request.headers['idempotency-key']).toBeUndefined()
    expect(request.json).toEqual({
      from: '+15550001111',
      to: '+15550002222',
      type: 'sms',
      body: 'hi there',
      attachments: [],
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
    })
    const sentAt = Date.parse((request.json as { timestamp: string }).timestamp)
    expect(sentAt).toBeGreaterThanOrEqual(before - 1000)
    expect(sentAt).toBeLessThanOrEqual(Date.now())
  })

  it('posts an MMS with repeated attachments, a key and a bearer token', async () => {
    const result = await runCli([
      'send',
      'mms',
      ...at(),
      ...phones,
      ...attachFlags(twoMedia),
      '--timestamp',
      '2024-11-01T14:00:00+01:00',
      '--idempotency-key',
      'order-42',
      '--api-key',
      'secret-key',
    ])

    const request = lastRequest(server)
    expect(result.code).toBe(0)
    expect(request.url).toBe('/api/messages/sms')
    expect(request.headers['idempotency-key']).toBe('order-42')
    expect(request.headers.authorization).toBe('Bearer secret-key')
    expect(request.json).toEqual({
      from: '+15550001111',
      to: '+15550002222',
      type: 'mms',
      body: '',
      attachments: ['https://example.com/a.png', 'https://example.com/b.png'],
      timestamp: '2024-11-01T14:00:00+01:00',
    })
  })

  it('posts an email with its subject and keeps the HTML body as given', async () => {
    const result = await runCli([
      'send',
      'email',
      ...at(),
      '--from',
      'Ann <ann@example.com>',
      '--to',
      'bob@example.com',
      '--subject',
      'Hello',
      '--body',
      '<p>Hi <b>Bob</b> &amp; co</p>',
      '--timestamp',
      '2024-11-01T14:00:00Z',
    ])

    const request = lastRequest(server)
    expect(result.code).toBe(0)
    expect(request.url).toBe('/api/messages/email')
    expect(request.json).toEqual({
      from: 'Ann <ann@example.com>',
      to: 'bob@example.com',
      subject: 'Hello',
      body: '<p>Hi <b>Bob</b> &amp; co</p>',
      attachments: [],
      timestamp: '2024-11-01T14:00:00Z',
    })
  })

  it('reads the server URL and the API key from the environment', async () => {
    const result = await runCli(['send', 'sms', ...phones, '--body', 'x'], {
      PARLEY_URL: server.url,
      PARLEY_API_KEY: 'env-key',
    })

    expect(result.code).toBe(0)
    expect(lastRequest(server).headers.authorization).toBe('Bearer env-key')
  })

  it('prints only the JSON document with --json', async () => {
    const result = await runCli([
      'send',
      'sms',
      ...at(),
      '--json',
      ...phones,
      '--body',
      'x',
    ])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual(accepted)
  })

  it('says so when the server replayed an earlier send', async () => {
    server.answerWith(() => ({
      status: 202,
      body: accepted,
      headers: { 'idempotent-replayed': 'true' },
    }))

    const result = await runCli([
      'send',
      'sms',
      ...at(),
      '--idempotency-key',
      'k',
      '--timestamp',
      '2024-11-01T14:00:00Z',
      ...phones,
      '--body',
      'x',
    ])

    expect(result.stdout).toBe(
      'accepted message 12 (conversation 3; replayed, it was sent before with this key)\n',
    )
  })

  it.each([['send'], ['receive']])(
    'refuses %s --idempotency-key without --timestamp (a rerun would differ)',
    async (command) => {
      const result = await runCli([
        command,
        'sms',
        ...at(),
        '--idempotency-key',
        'k',
        ...phones,
        '--body',
        'x',
      ])

      expect(result.code).toBe(2)
      expect(result.stderr).toContain('--idempotency-key needs --timestamp')
      expect(server.requests).toHaveLength(0)
    },
  )
})

describe('errors', () => {
  it('prints a validation error with each bad field and exits 1', async () => {
    server.answerWith(() => ({
      status: 400,
      body: {
        code: 'validation_failed',
        message: 'the message is not valid',
        request_id: 'req-7',
        details: [
          { field: 'to', message: 'is not a phone number' },
          { field: 'timestamp', message: 'has no time zone' },
        ],
      },
    }))

    const result = await runCli([
      'send',
      'sms',
      ...at(),
      '--json',
      '--from',
      '+15550001111',
      '--to',
      'nobody',
      '--body',
      'x',
    ])

    expect(JSON.parse(result.stdout)).toEqual({
      error: {
        code: 'validation_failed',
        message: 'the message is not valid',
        status: 400,
        request_id: 'req-7',
        details: [
          { field: 'to', message: 'is not a phone number' },
          { field: 'timestamp', message: 'has no time zone' },
        ],
      },
    })
    expect({ ...result, stdout: '' }).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        'error: validation_failed: the message is not valid',
        '  to: is not a phone number',
        '  timestamp: has no time zone',
        '(request id: req-7)',
        '',
      ].join('\n'),
    })
  })

  it('hints at the API key on 401', async () => {
    server.answerWith(() => ({
      status: 401,
      body: {
        code: 'unauthorized',
        message: 'missing API key',
        request_id: 'r',
      },
    }))

    const result = await runCli(['conversations', ...at()])

    expect(result.code).toBe(1)
    expect(result.stderr).toContain('error: unauthorized: missing API key\n')
    expect(result.stderr).toContain(
      'hint: pass --api-key or set PARLEY_API_KEY',
    )
  })

  it('reports an answer that is not a Parley error body', async () => {
    server.answerWith(answerAlways(502, '<h1>Bad Gateway</h1>'))

    const result = await runCli(['conversations', ...at()])

    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `error: unexpected answer from ${server.url} (HTTP 502): 502 Bad Gateway` +
        ' — is it a Parley server?\n',
    )
  })

  it('explains how to start a server when nothing answers', async () => {
    const url = await deadServerUrl()

    const result = await runCli(['conversations', '--url', url])

    expectNoServer(result, ['conversations'], url)
  })

  it.each([
    ['an unknown command', ['bogus'], "unknown command 'bogus'"],
    [
      'an unknown option',
      ['conversations', '--bogus'],
      "unknown option '--bogus'",
    ],
    [
      'a missing required option',
      ['send', 'sms', ...phones],
      "required option '--body <text>' not specified",
    ],
    [
      'an MMS without attachments',
      ['send', 'mms', ...phones],
      "required option '--attach <url>' not specified",
    ],
    [
      'a bad page number',
      ['conversations', '--page', '0'],
      'expected 1 or more',
    ],
    [
      'a URL that is not http',
      ['conversations', '--url', 'ftp://x'],
      'http://',
    ],
    [
      'a conversation id that is not digits',
      ['messages', '../metrics'],
      'decimal digits',
    ],
    [
      'a missing conversation id',
      ['messages'],
      "missing required argument 'conversation-id'",
    ],
    ['no command at all', [], 'Usage: parley'],
  ])('exits 2 on %s', async (_, args, message) => {
    const result = await runCli(args, { PARLEY_URL: server.url })

    expectUsageError(result, args, message)
    expect(server.requests).toEqual([])
  })
})

describe('help and version', () => {
  it('lists every command in parley --help', async () => {
    const result = await runCli(['--help'])

    expect(result.code).toBe(0)
    for (const command of ['serve', 'send', 'conversations', 'messages']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'))
    }
  })

  it('loads the server only when serve runs, so help needs no server', async () => {
    const bin = readFileSync(binPath, 'utf8')

    const result = await runCli(['serve', '--help'])

    expect(result.code).toBe(0)
    expect(result.stdout).toContain('Usage: parley serve')
    expect(bin).toContain("await import('@parley/server')".replaceAll("'", '"'))
    expect(bin).not.toMatch(/^import .*@parley\/server/m)
  })

  it('prints the package version', async () => {
    const packageJson = JSON.parse(
      readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version: string }

    const result = await runCli(['--version'])

    expect(result).toEqual({
      code: 0,
      stdout: `${packageJson.version}\n`,
      stderr: '',
    })
  })
})

describe('parley conversations', () => {
  const page = {
    items: [
      {
        id: '10',
        key: 'email:ann@example.com<->bob@example.com',
        channel: 'email',
        participant_a: 'ann@example.com',
        participant_b: 'bob@example.com',
        message_count: 3,
        last_activity_at: '2024-11-01T14:00:00.000Z',
      },
      {
        id: '9',
        key: 'sms:+15550001111<->+15550002222',
        channel: 'sms',
        participant_a: '+15550001111',
        participant_b: '+15550002222',
        message_count: 120,
        last_activity_at: '2024-11-01T13:00:00.000Z',
      },
    ],
    meta: { page: 2, page_size: 2, total: 5 },
  }

  it('asks for the page and prints an aligned table with a footer', async () => {
    server.answerWith(answerAlways(200, page))

    const result = await runCli([
      'conversations',
      ...at(),
      '--page',
      '2',
      '--page-size',
      '2',
    ])

    expect(lastRequest(server)).toMatchObject({
      method: 'GET',
      url: '/api/conversations?page=2&pageSize=2',
    })
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(
      [
        'ID  CHANNEL  PARTICIPANTS                         MESSAGES  LAST ACTIVITY',
        '10  email    ann@example.com <-> bob@example.com         3  2024-11-01T14:00:00.000Z',
        ' 9  sms      +15550001111 <-> +15550002222             120  2024-11-01T13:00:00.000Z',
        '',
        'page 2 of 3, 5 conversations in all (next: --page 3)',
        '',
      ].join('\n'),
    )
  })

  it('leaves paging to the server when no flag is given', async () => {
    server.answerWith(answerAlways(200, page))

    await runCli(['conversations', ...at()])

    expect(lastRequest(server).url).toBe('/api/conversations')
  })

  it('prints the page as JSON with --json', async () => {
    server.answerWith(answerAlways(200, page))

    const result = await runCli(['conversations', ...at(), '--json'])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual(page)
  })

  it('says when there is nothing to list', async () => {
    server.answerWith(answerAlways(200, emptyPage))

    const result = await runCli(['conversations', ...at()])

    expect(result.stdout).toBe(
      'no conversations here; page 1 of 1, 0 conversations in all\n',
    )
  })
})

describe('parley messages', () => {
  const page = {
    items: [
      {
        id: '31',
        conversation_id: '3',
        direction: 'outbound',
        channel: 'sms',
        from: '+15550001111',
        to: '+15550002222',
        body: 'See you\nat 6',
        snippet: 'See you\nat 6',
        attachments: [],
        timestamp: '2024-11-01T14:00:00.000Z',
        status: 'sent',
      },
      {
        id: '32',
        conversation_id: '3',
        direction: 'inbound',
        channel: 'mms',
        from: '+15550002222',
        to: '+15550001111',
        body: '\u001b[2Jok 👍',
        snippet: '\u001b[2Jok 👍',
        attachments: ['https://example.com/a.png'],
        timestamp: '2024-11-01T14:05:00.000Z',
        status: 'received',
      },
    ],
    meta: { page: 1, page_size: 50, total: 2 },
  }

  it('prints the conversation as a table, one line per message', async () => {
    server.answerWith(answerAlways(200, page))

    const result = await runCli(['messages', '3', ...at()])

    expect(lastRequest(server).url).toBe('/api/conversations/3/messages')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(
      [
        'ID  TIME                      DIRECTION  CHANNEL  FROM          TO            STATUS    SNIPPET',
        '31  2024-11-01T14:00:00.000Z  outbound   sms      +15550001111  +15550002222  sent      See you at 6',
        '32  2024-11-01T14:05:00.000Z  inbound    mms      +15550002222  +15550001111  received  \ufffd[2Jok 👍',
        '',
        'page 1 of 1, 2 messages in all',
        '',
      ].join('\n'),
    )
  })

  it('reports an unknown conversation', async () => {
    server.answerWith(() => ({
      status: 404,
      body: {
        code: 'not_found',
        message: 'no conversation 99',
        request_id: 'r9',
      },
    }))

    const result = await runCli(['messages', '99', ...at()])

    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      'error: not_found: no conversation 99\n' +
        'hint: list conversations and their ids with `parley conversations`\n' +
        '(request id: r9)\n',
    )
  })
})
