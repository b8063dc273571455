/**
 * The built `parley` bin against a real Parley server: one server process
 * for the whole file (on 127.0.0.1, a free port and a temporary SQLite
 * file). Email is set to fail at once (100% provider errors, no retries) so
 * that dead letters exist to list and replay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { get } from '../../../test/helpers/http.js'
import { freshSchema } from '../../../test/helpers/postgres.js'
import { postgresSkipReason } from '../../../test/helpers/postgres-required.js'
import { pollUntil } from '../../../test/helpers/poll.js'
import {
  cleanUpServers,
  makeTempDir,
  type ServerProcess,
  startServerProcess,
} from '../../../test/helpers/server-process.js'
import { deadServerUrl } from './fake-server.js'
import { attachFlags, phones, twoMedia } from './message-flags.js'
import {
  assertBuilt,
  expectNoServer,
  expectUsageError,
  runCli,
  startCli,
  type CliResult,
} from './run-cli.js'

let server: ServerProcess

const postgresSkip = await postgresSkipReason('the Postgres migrate test')

const at = () => ['--url', server.url]
const emails = ['--from', 'ann@example.com', '--to', 'bob@example.com']

beforeAll(async () => {
  assertBuilt()
  server = await startServerProcess({
    env: { API_PROVIDER_EMAIL_ERROR_PCT: '100', API_WORKER_MAX_RETRIES: '0' },
  })
})

afterAll(cleanUpServers)

/** The one JSON document on stdout: fails if there is anything else. */
function onlyJson(result: CliResult): any {
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  return JSON.parse(result.stdout)
}

async function sendSms(body: string): Promise<{ id: string }> {
  const result = await runCli([
    'send',
    'sms',
    ...at(),
    ...phones,
    '--body',
    body,
    '--json',
  ])
  return onlyJson(result)
}

/** Waits until the server has moved message `id` past `queued`. */
async function dispatched(id: string): Promise<any> {
  const { value } = await pollUntil(async () => {
    const { body } = await get(server.url, `/api/messages/${id}`)
    return ['queued', 'sending'].includes(body.status) ? false : body
  })
  return value
}

describe('sending and receiving', () => {
  it('sends an SMS and prints its ids, or the 202 document with --json', async () => {
    const text = await runCli([
      'send',
      'sms',
      ...at(),
      ...phones,
      '--body',
      'hi',
    ])
    const json = await sendSms('hi again')

    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^accepted message \d+ \(conversation \d+\)\n$/)
    expect(json).toEqual({
      status: 'accepted',
      id: expect.stringMatching(/^\d+$/),
      conversation_id: expect.stringMatching(/^\d+$/),
    })
  })

  it('sends an MMS with every --attach, and an email with its subject', async () => {
    const mms = await runCli([
      'send',
      'mms',
      ...at(),
      ...phones,
      ...attachFlags(twoMedia),
      '--json',
    ])
    const email = await runCli([
      'send',
      'email',
      ...at(),
      ...emails,
      '--subject',
      'Hello',
      '--body',
      '<p>Hi</p>',
      '--json',
    ])

    const stored = await get(server.url, `/api/messages/${onlyJson(mms).id}`)
    expect(stored.body.attachments).toEqual([
      'https://example.com/a.png',
      'https://example.com/b.png',
    ])
    const mail = await get(server.url, `/api/messages/${onlyJson(email).id}`)
    expect(mail.body).toMatchObject({ subject: 'Hello', body: '<p>Hi</p>' })
  })

  it('replays a send run twice with one --idempotency-key and --timestamp', async () => {
    const args = [
      'send',
      'sms',
      ...at(),
      ...phones,
      '--body',
      'once',
      '--idempotency-key',
      `cli-${Date.now()}`,
      '--timestamp',
      '2024-11-01T14:00:00+01:00',
    ]

    const first = await runCli(args)
    const second = await runCli(args)

    expect(first.stdout).not.toContain('replayed')
    expect(second.stdout).toBe(
      first.stdout.replace(
        ')\n',
        '; replayed, it was sent before with this key)\n',
      ),
    )
  })

  it('posts an inbound webhook that the server threads into its conversation', async () => {
    const result = await runCli([
      'receive',
      'sms',
      ...at(),
      '--from',
      '+15550003333',
      '--to',
      '+15550001111',
      '--body',
      'inbound',
      '--json',
    ])

    expect(onlyJson(result)).toEqual({ status: 'accepted' })
    await pollUntil(async () => {
      const list = await runCli(['conversations', ...at(), '--json'])
      return onlyJson(list).items.some(
        (item: any) =>
          item.participant_a === '+15550001111' &&
          item.participant_b === '+15550003333',
      )
    })
  })
})

describe('reading', () => {
  it('lists conversations as a table, and as the API document with --json', async () => {
    await sendSms('for the list')

    const table = await runCli(['conversations', ...at()])
    const json = await runCli([
      'conversations',
      ...at(),
      '--json',
      '--page-size',
      '2',
    ])

    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(
      /^ID {2}CHANNEL {2}PARTICIPANTS +MESSAGES {2}LAST ACTIVITY\n/,
    )
    expect(table.stdout).toContain('+15550001111 <-> +15550002222')
    expect(table.stdout).toMatch(/\n\npage 1 of 1, \d+ conversations in all\n$/)
    const api = await get(server.url, '/api/conversations?pageSize=2')
    expect(onlyJson(json)).toEqual(api.body)
  })

  it("lists a conversation's messages with their status, and as JSON", async () => {
    const sent = await sendSms('listed')
    await dispatched(sent.id)
    const { conversation_id: conversation } = (
      await get(server.url, `/api/messages/${sent.id}`)
    ).body

    const table = await runCli(['messages', conversation, ...at()])
    const json = await runCli(['messages', conversation, ...at(), '--json'])

    expect(table.stdout).toMatch(
      /^ID {2}TIME +DIRECTION {2}CHANNEL {2}FROM +TO +STATUS +SNIPPET\n/,
    )
    expect(table.stdout).toMatch(
      new RegExp(`\\n *${sent.id} .* outbound +sms .* sent +listed\\n`),
    )
    const api = await get(
      server.url,
      `/api/conversations/${conversation}/messages`,
    )
    expect(onlyJson(json)).toEqual(api.body)
  })

  it('shows one message with status, attempts, provider and last error', async () => {
    const sent = await sendSms('detail')
    await dispatched(sent.id)

    const text = await runCli(['message', sent.id, ...at()])
    const json = onlyJson(await runCli(['message', sent.id, ...at(), '--json']))

    expect(text.stdout).toMatch(
      new RegExp(`^message ${sent.id}: outbound sms, conversation \\d+\\n`),
    )
    expect(text.stdout).toMatch(
      /\n {2}status {8}sent\n {2}attempts {6}1\n {2}provider {6}mock-sms\n/,
    )
    expect(text.stdout).toContain('\n  last error    -\n')
    expect(json).toMatchObject({
      id: sent.id,
      status: 'sent',
      attempts: 1,
      provider: 'mock-sms',
      last_error: null,
    })
  })

  it('says what to run when a message id does not exist', async () => {
    const result = await runCli(['message', '999999', ...at(), '--json'])

    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout).error).toMatchObject({
      code: 'not_found',
      status: 404,
      hint: expect.stringContaining('parley'),
    })
    expect(result.stderr).toMatch(
      /^error: not_found: .*\nhint: .*parley messages <conversation-id>/,
    )
  })
})

describe('metrics', () => {
  it('groups the counters in aligned tables, and prints the document with --json', async () => {
    const text = await runCli(['metrics', ...at()])
    const json = onlyJson(await runCli(['metrics', ...at(), '--json']))

    expect(json.dispatch_attempts).toBeGreaterThan(0)
    expect(text.stdout).toMatch(
      /^metrics of http:\/\/127\.0\.0\.1:\d+ at \d{4}-/,
    )
    for (const group of [
      'HTTP EDGE',
      'DISPATCH',
      'PROVIDERS: SMS AND MMS',
      'INBOUND WORKER',
      'CONVERSATIONS',
    ]) {
      expect(text.stdout).toContain(`\n${group} `)
    }
    // One column of numbers for the whole report: every value ends at the
    // same column.
    const ends = text.stdout
      .split('\n')
      .filter((line) => /^[a-z_]+ +\d+$/.test(line))
      .map((line) => line.length)
    expect(ends.length).toBeGreaterThan(20)
    expect(new Set(ends).size).toBe(1)
  })

  it('refreshes with --watch until Ctrl-C, then exits 0', async () => {
    const watch = startCli(['metrics', '--watch', ...at()])

    await watch.waitForOutput(/(metrics of [^]*){2}/)
    const code = await watch.stop('SIGINT')

    expect(code).toBe(0)
    expect(watch.stdout()).toContain('PER SEC')
    expect(watch.stdout()).not.toContain('\u001b')
  })
})

describe('dead letters', () => {
  it('lists a failed email in the dispatch queue and replays it by id', async () => {
    const email = onlyJson(
      await runCli([
        'send',
        'email',
        ...at(),
        ...emails,
        '--body',
        'doomed',
        '--json',
      ]),
    )
    const failed = await dispatched(email.id)
    expect(failed.status).toBe('failed')

    const list = onlyJson(await runCli(['dead-letters', ...at(), '--json']))
    const letter = list.items.find((item: any) => item.message_id === email.id)
    const table = await runCli(['dead-letters', ...at()])
    const retry = await runCli(['dead-letters', 'retry', letter.id, ...at()])
    const shown = onlyJson(
      await runCli(['message', email.id, ...at(), '--json']),
    )

    expect(table.stdout).toMatch(
      /^ID +MESSAGE +ATTEMPTS +FAILED AT +LAST ERROR\n/,
    )
    expect(retry).toEqual({
      code: 0,
      stdout: `dead letter ${letter.id} is back in the dispatch queue with a fresh attempt count\n`,
      stderr: '',
    })
    expect(shown.last_error).toEqual(expect.any(String))
  })

  it('says how to list dead letters when the id does not exist', async () => {
    const result = await runCli([
      'dead-letters',
      'retry',
      '999999',
      '--queue',
      'inbound',
      ...at(),
    ])

    expect(result.code).toBe(1)
    expect(result.stderr).toContain(
      'hint: list them with `parley dead-letters --queue inbound`',
    )
  })
})

describe('load', () => {
  it('sends a mix, waits for the server, and prints one JSON summary', async () => {
    const result = await runCli([
      'load',
      ...at(),
      '--count',
      '40',
      '--traffic',
      'mix',
      '--concurrency',
      '8',
      '--json',
    ])

    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout)
    expect(summary.requests).toMatchObject({
      sent: 40,
      accepted: 40,
      rejected: 0,
      rejected_by_status: {},
      no_answer: 0,
    })
    expect(summary.latency_ms.p50).toBeLessThanOrEqual(summary.latency_ms.p99)
    expect(summary.latency_ms.p99).toBeLessThanOrEqual(summary.latency_ms.max)
    expect(summary.server).toMatchObject({
      complete: true,
      // Email fails on this server: failing for good is being handled too.
      dispatch: { expected: 20, done: 20, statuses: { sent: 10, failed: 10 } },
      threading: { expected: 20, done: 20 },
    })
    expect(summary.server.elapsed_ms).toBeGreaterThan(0)
    expect(summary.counters.worker_processed).toBe(20)
    // Not a terminal: plain progress lines, no bar and no carriage return.
    expect(result.stderr).toMatch(/^requests \d+\/40, /m)
    expect(result.stderr).toMatch(
      /^server: dispatched 20\/20, threaded 20\/20/m,
    )
    expect(result.stderr).not.toContain('\r')
  })

  it('prints the summary as aligned sections for people', async () => {
    const result = await runCli([
      'load',
      ...at(),
      '--count',
      '10',
      '--rate',
      '50',
    ])

    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(
      /^parley load: 10 requests to http:\/\/127\.0\.0\.1:\d+\nsms; 50\/s, up to 16 at once\n/,
    )
    expect(result.stdout).toMatch(
      /\nREQUESTS\n {2}sent {8}10 in [\d.]+ s\n {2}throughput {2}[\d.]+ req\/s\n {2}accepted {4}10\n {2}rejected {4}0\n/,
    )
    expect(result.stdout).toMatch(
      /\nLATENCY\n {2}p50 {2}[\d.]+ ms\n {2}p90 {2}[\d.]+ ms\n {2}p99 {2}[\d.]+ ms\n {2}max {2}[\d.]+ ms\n/,
    )
    expect(result.stdout).toMatch(
      /\nSERVER\n {2}dispatched {3}10 of 10 \(sent 10\)\n/,
    )
  })
})

describe('migrate', () => {
  it('applies every migration to a new SQLite file, then finds nothing to do', async () => {
    const file = `${makeTempDir()}/fresh.db`

    const first = await runCli(['migrate', '--database-url', file])
    const again = onlyJson(
      await runCli(['migrate', '--json'], { DATABASE_URL: file }),
    )

    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(
      new RegExp(
        `^applied \\d+ migrations to sqlite ${file}:\\n(  \\+ \\d{4}_[a-z_]+\\n)+$`,
      ),
    )
    expect(again).toEqual({ dialect: 'sqlite', database: file, applied: [] })
  })

  it.skipIf(postgresSkip !== undefined)(
    'applies every migration to the Postgres schema named in DATABASE_URL',
    async () => {
      const schema = await freshSchema()
      try {
        const env = { DATABASE_URL: schema.databaseUrl }
        const first = onlyJson(await runCli(['migrate', '--json'], env))
        const again = await runCli(['migrate'], env)

        expect(first).toEqual({
          dialect: 'postgres',
          database: expect.stringMatching(
            new RegExp(`^postgres://.*\\(schema ${schema.name}\\)$`),
          ),
          applied: expect.arrayContaining(['0001_initial_schema']),
        })
        expect(again.stdout).toMatch(/ is up to date: no migration to apply\n$/)
      } finally {
        await schema.drop()
      }
    },
  )

  it('exits 2 with the reason on a URL it cannot use', async () => {
    const result = await runCli(['migrate', '--database-url', 'mysql://db/x'])

    // A URL the configuration refuses is a usage error.
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(
      /^error: bad --database-url \(DATABASE_URL: unsupported scheme "mysql"/,
    )
  })
})

describe('serve', () => {
  it('prints where it listens with --json, serves, and stops on SIGTERM', async () => {
    const dir = makeTempDir()
    const serve = startCli(
      ['serve', '--port', '0', '--host', '127.0.0.1', '--json'],
      {
        DATABASE_URL: `${dir}/serve.db`,
      },
    )

    const listening = JSON.parse(await serve.waitForOutput(/\}\n$/, 15_000))
    const sent = await runCli([
      'send',
      'sms',
      '--url',
      listening.url,
      ...phones,
      '--body',
      'x',
    ])
    const code = await serve.stop('SIGTERM')

    expect(listening).toEqual({
      status: 'listening',
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      port: expect.any(Number),
      database: 'sqlite',
    })
    expect(sent.code).toBe(0)
    expect(code).toBe(0)
    expect(serve.stderr()).toContain('"event":"server.listening"')
  })

  it('logs JSON lines to stdout without --json, every one of them through SIGTERM', async () => {
    const dir = makeTempDir()
    const serve = startCli(['serve', '--port', '0', '--host', '127.0.0.1'], {
      DATABASE_URL: `${dir}/serve-logs.db`,
    })

    const started = await serve.waitForOutput(
      /"event":"server\.listening"/,
      15_000,
    )
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(started)?.[1]
    if (url === undefined) throw new Error(`no URL in ${started}`)
    const sent = await runCli([
      'send',
      'sms',
      '--url',
      url,
      ...phones,
      '--body',
      'x',
    ])
    const code = await serve.stop('SIGTERM')

    expect(sent.code).toBe(0)
    expect(code).toBe(0)
    const events = serve
      .stdout()
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { event: string }).event)
    expect(events).toContain('message.accepted')
    expect(events).toContain('http.request')
    // The last lines, written as the process exits, are all there.
    expect(events.slice(-1)).toEqual(['server.shutdown_finished'])
    expect(events).toContain('server.signal')
  })
})

describe('mock-provider', () => {
  it('prints its URL and credentials as one document with --json, and stops on Ctrl-C', async () => {
    const mock = startCli([
      'mock-provider',
      '--port',
      '0',
      '--seed',
      '7',
      '--json',
    ])

    const started = JSON.parse(await mock.waitForOutput(/\}\n$/))
    const config = await get(started.url, '/__mock/config')
    const code = await mock.stop('SIGINT')

    expect(started).toEqual({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      credentials: {
        accountSid: expect.any(String),
        authToken: expect.any(String),
        apiKey: expect.any(String),
      },
    })
    expect(config.status).toBe(200)
    expect(code).toBe(0)
  })
})

describe('failures', () => {
  it.each([
    [['conversations']],
    [['message', '1']],
    [['metrics']],
    [['load', '--count', '5']],
    [['send', 'sms', ...phones, '--body', 'x', '--json']],
  ])('says no server answers and how to start one: %j', async (args) => {
    const url = await deadServerUrl()

    const result = await runCli([...args, '--url', url])

    expectNoServer(result, args, url)
  })

  it.each([
    [['frobnicate'], "unknown command 'frobnicate'"],
    [
      ['send', 'sms', '--to', '+15550002222', '--body', 'x'],
      "required option '--from <from>' not specified",
    ],
    [['load', '--count', 'many'], 'expected a whole number'],
    [['load', '--traffic', 'fax'], 'unknown kind "fax"'],
    [['metrics', '--watch', '--json'], 'cannot be combined with --json'],
    [['message', 'abc'], 'decimal digits'],
    [['conversations', '--colour'], "unknown option '--colour'"],
  ])('exits 2 with a message on bad usage: %j', async (args, message) => {
    const result = await runCli([...args, ...at()])

    expectUsageError(result, args, message)
  })
})
