import { beforeAll, describe, expect, it } from 'vitest'

import {
  answerAlways,
  deadServerUrl,
  lastRequest,
  useFakeServer,
} from './fake-server.js'
import { attachFlags, twoMedia } from './message-flags.js'
import {
  assertBuilt,
  expectNoServer,
  expectUsageError,
  runCli,
} from './run-cli.js'

beforeAll(assertBuilt)

const server = useFakeServer(answerAlways(202, { status: 'accepted' }))

/** The flag that points the CLI at the fake server. */
const at = () => ['--url', server.url]

// Inbound, so from the other party to us: the reverse of what send tests use.
const phones = ['--from', '+15550002222', '--to', '+15550001111']
const emails = ['--from', 'bob@example.com', '--to', 'ann@example.com']

/** Runs `parley receive sms` between the test phones, at the fake server. */
const receiveSms = (...flags: string[]) =>
  runCli(['receive', 'sms', ...at(), ...phones, ...flags])

const testProviderId =
  /^test-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('parley receive', () => {
  it('posts an inbound SMS webhook with a fresh test provider id', async () => {
    const before = Date.now()

    const result = await receiveSms('--body', 'Running late')

    const request = lastRequest(server)
    const json = request.json as Record<string, string>
    expect(request.method).toBe('POST')
    expect(request.url).toBe('/api/webhooks/sms')
    expect(request.headers['content-type']).toBe('application/json')
    expect(request.headers.accept).toBe('application/json')
    expect(request.headers['user-agent']).toMatch(/^parley-cli\/\d/)
    expect(request.headers['idempotency-key']).toBeUndefined()
    expect(Object.keys(json)).toEqual([
      'from',
      'to',
      'type',
      'body',
      'attachments',
      'timestamp',
      'messaging_provider_id',
    ])
    expect(json).toEqual({
      from: '+15550002222',
      to: '+15550001111',
      type: 'sms',
      body: 'Running late',
      attachments: [],
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
      messaging_provider_id: expect.stringMatching(testProviderId),
    })
    expect(Date.parse(json.timestamp ?? '')).toBeGreaterThanOrEqual(
      before - 1000,
    )
    expect(result).toEqual({
      code: 0,
      stdout: `accepted inbound sms (provider id ${json.messaging_provider_id})\n`,
      stderr: '',
    })
  })

  it('makes a new provider id on every run', async () => {
    await receiveSms('--body', 'x')
    await receiveSms('--body', 'x')

    const [first, second] = server.requests.map(
      (request) =>
        (JSON.parse(request.body) as Record<string, string>)
          .messaging_provider_id,
    )
    expect(first).toMatch(testProviderId)
    expect(second).toMatch(testProviderId)
    expect(first).not.toBe(second)
  })

  it('makes the provider id from the idempotency key, so a rerun replays', async () => {
    const args = [
      'receive',
      'email',
      ...at(),
      ...emails,
      '--body',
      'hi',
      '--timestamp',
      '2024-11-01T14:04:00Z',
      '--idempotency-key',
      'hook-7',
    ]

    await runCli(args)
    await runCli(args)
    await runCli([...args.slice(0, -1), 'hook-8'])

    const [first, second, other] = server.requests
    expect(first?.headers['idempotency-key']).toBe('hook-7')
    expect(second?.body).toBe(first?.body)
    expect(JSON.parse(first?.body ?? '')).toMatchObject({
      xillio_id: expect.stringMatching(/^test-[0-9a-f]{32}$/),
    })
    expect(other?.body).not.toBe(first?.body)
  })

  it('posts an MMS to the SMS webhook with its media, id, time and key', async () => {
    const result = await runCli([
      'receive',
      'mms',
      ...at(),
      ...phones,
      ...attachFlags(twoMedia),
      '--timestamp',
      '2024-11-01T14:03:00+01:00',
      '--provider-id',
      'SM42',
      '--idempotency-key',
      'hook-1',
      '--api-key',
      'secret-key',
    ])

    const request = lastRequest(server)
    expect(result.stdout).toBe('accepted inbound mms (provider id SM42)\n')
    expect(request.url).toBe('/api/webhooks/sms')
    expect(request.headers['idempotency-key']).toBe('hook-1')
    expect(request.headers.authorization).toBe('Bearer secret-key')
    expect(request.json).toEqual({
      from: '+15550002222',
      to: '+15550001111',
      type: 'mms',
      body: '',
      attachments: ['https://example.com/a.png', 'https://example.com/b.png'],
      timestamp: '2024-11-01T14:03:00+01:00',
      messaging_provider_id: 'SM42',
    })
  })

  it('posts an inbound email with its subject and xillio_id', async () => {
    const result = await runCli([
      'receive',
      'email',
      ...at(),
      '--from',
      'Bob <bob@example.com>',
      '--to',
      'ann@example.com',
      '--subject',
      'Re: Hello',
      '--body',
      '<p>Thanks &amp; <b>bye</b></p>',
      '--timestamp',
      '2024-11-01T14:04:00Z',
      '--provider-id',
      'mail-1',
    ])

    const request = lastRequest(server)
    expect(result.code).toBe(0)
    expect(request.url).toBe('/api/webhooks/email')
    expect(request.json).toEqual({
      from: 'Bob <bob@example.com>',
      to: 'ann@example.com',
      subject: 'Re: Hello',
      body: '<p>Thanks &amp; <b>bye</b></p>',
      attachments: [],
      timestamp: '2024-11-01T14:04:00Z',
      xillio_id: 'mail-1',
    })
  })

  it('says when the server had seen the provider id or replayed the key', async () => {
    server.answerWith(() => ({
      status: 202,
      body: { status: 'accepted', duplicate: true },
      headers: { 'idempotent-replayed': 'true' },
    }))

    const result = await receiveSms('--body', 'x', '--provider-id', 'SM42')

    expect(result.stdout).toBe(
      'accepted inbound sms (provider id SM42; a duplicate of an earlier ' +
        'post, so nothing new was stored; replayed, it was posted before ' +
        'with this key)\n',
    )
  })

  it("prints only the server's document with --json", async () => {
    server.answerWith(() => ({
      status: 202,
      body: { status: 'accepted', duplicate: true },
    }))

    const result = await runCli([
      'receive',
      'email',
      ...at(),
      '--json',
      ...emails,
      '--body',
      'hi',
    ])

    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    expect(JSON.parse(result.stdout)).toEqual({
      status: 'accepted',
      duplicate: true,
    })
  })

  it('prints a validation error with each bad field and exits 1', async () => {
    server.answerWith(() => ({
      status: 400,
      body: {
        code: 'validation_failed',
        message: 'the message is not valid',
        request_id: 'req-8',
        details: [{ field: 'messaging_provider_id', message: 'is empty' }],
      },
    }))

    const result = await receiveSms('--body', 'x', '--provider-id', ' ')

    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        'error: validation_failed: the message is not valid',
        '  messaging_provider_id: is empty',
        '(request id: req-8)',
        '',
      ].join('\n'),
    })
  })

  it('explains how to start a server when nothing answers', async () => {
    const url = await deadServerUrl()

    const args = ['receive', 'sms', '--url', url, ...phones, '--body', 'x']

    const result = await runCli(args)

    expectNoServer(result, args, url)
  })

  it.each([
    ['no kind', ['receive'], 'Usage: parley receive'],
    ['an unknown kind', ['receive', 'fax'], "unknown command 'fax'"],
    [
      'an SMS without a body',
      ['receive', 'sms', ...phones],
      "required option '--body <text>' not specified",
    ],
    [
      'an MMS without attachments',
      ['receive', 'mms', ...phones],
      "required option '--attach <url>' not specified",
    ],
    [
      'an email without a sender',
      ['receive', 'email', '--to', 'ann@example.com', '--body', 'x'],
      "required option '--from <from>' not specified",
    ],
    [
      'a subject on an SMS',
      ['receive', 'sms', ...phones, '--body', 'x', '--subject', 'Hi'],
      "unknown option '--subject'",
    ],
  ])('exits 2 before any request on %s', async (_, args, message) => {
    const result = await runCli(args, { PARLEY_URL: server.url })

    expectUsageError(result, args, message)
    expect(server.requests).toEqual([])
  })
})

describe('help for the new commands', () => {
  it('lists them with one-line descriptions in parley --help', async () => {
    const result = await runCli(['--help'])

    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(
      /^ {2}receive <command> {2,}post a test inbound webhook, as a provider would$/m,
    )
    expect(result.stdout).toMatch(
      /^ {2}dead-letters <command> {2,}list and replay messages that failed for good$/m,
    )
  })
})

describe('parley receive refused for its signature', () => {
  it('names the signing secret of the webhook family, not the API key', async () => {
    server.answerWith(() => ({
      status: 401,
      body: { code: 'unauthorized', message: 'bad webhook signature' },
    }))
    const cases = [
      ['sms', phones, 'WEBHOOK_SMS_AUTH_TOKEN'],
      [
        'mms',
        [...phones, '--attach', 'https://example.com/a.png'],
        'WEBHOOK_SMS_AUTH_TOKEN',
      ],
      [
        'email',
        ['--from', 'a@example.com', '--to', 'b@example.com', '--subject', 's'],
        'WEBHOOK_EMAIL_SECRET',
      ],
    ] as const

    for (const [kind, flags, secret] of cases) {
      const result = await runCli([
        'receive',
        kind,
        ...at(),
        ...flags,
        '--body',
        'hi',
      ])

      expect(result.code).toBe(1)
      expect(result.stderr).toContain(
        `hint: the server checks webhook signatures: set ${secret}`,
      )
      expect(result.stderr).not.toContain('--api-key')
    }
  })
})
