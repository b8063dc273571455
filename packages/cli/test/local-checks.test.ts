/**
 * What the CLI can check itself is refused before any request (exit 2),
 * and the ends a terminal user meets are quiet: a blocked port is named, a
 * closed pipe or a full disk ends without a stack trace, and
 * `metrics --watch` outlives a failed refresh and redraws in place.
 */
import { spawn } from 'node:child_process'
import { beforeAll, describe, expect, it } from 'vitest'

import type { CliOutput } from '../src/output.js'
import { run } from '../src/program.js'
import { answerAlways, emptyPage, useFakeServer } from './fake-server.js'
import { phones } from './message-flags.js'
import { assertBuilt, binPath, runCli, startCli } from './run-cli.js'

beforeAll(assertBuilt)

const server = useFakeServer(answerAlways(200, { dispatch_attempts: 1 }))

const sms = ['send', 'sms', ...phones]
const at = '2024-11-01T14:00:00Z'

/** A `send sms` that is valid but for its `--timestamp`. */
const smsAt = (timestamp: string) => [
  ...sms,
  '--body',
  'x',
  '--timestamp',
  timestamp,
]

/** A `send sms` that is valid but for its `--idempotency-key`. */
const smsKeyed = (key: string) => [...smsAt(at), '--idempotency-key', key]

describe('values the CLI checks itself', () => {
  it('refuses each with exit 2 before any request', async () => {
    const cases: [string[], RegExp][] = [
      [smsAt('yesterday'), /--timestamp/],
      [smsAt('2024-02-30T10:00:00Z'), /--timestamp/],
      [smsAt('2023-02-29T10:00:00Z'), /--timestamp/],
      [smsAt('0000-06-01T00:00:00Z'), /--timestamp/],
      [smsAt('2024-11-01T24:00:00Z'), /--timestamp/],
      [smsAt('2024-11-01T14:00:00'), /--timestamp/],
      [[...smsAt(at), '--idempotency-key='], /--idempotency-key/],
      [smsKeyed('a b'), /--idempotency-key/],
      [smsKeyed('ké'), /--idempotency-key/],
      [smsKeyed('k\x7f\x1b[2J'), /--idempotency-key/],
      [smsKeyed('k'.repeat(256)), /--idempotency-key/],
      [['load', '--count', '99999999999999999'], /--count/],
      [['load', '--wait-timeout', '9999999'], /--wait-timeout/],
      [['metrics', '--watch', '--interval', '3000000'], /--interval/],
      [['metrics', '--watch', '--interval', '0'], /--interval/],
      [['send', 'sms', '--bogus'], /unknown option '--bogus'/],
      [['receive', 'email', '--bogus'], /unknown option '--bogus'/],
      [['mock-provider', '--account-sid='], /--account-sid/],
      [['mock-provider', '--auth-token', ' '], /--auth-token/],
      [
        ['migrate', '--database-url', 'mysql://db/parley'],
        /bad --database-url \(DATABASE_URL: .*mysql/,
      ],
      [
        ['migrate', '--database-url', 'postgres://db/parley?schema=UPPER'],
        /bad --database-url \(DATABASE_URL: .*schema/,
      ],
      [
        ['migrate', '--database-url='],
        /--database-url \(or DATABASE_URL\) is empty/,
      ],
    ]

    for (const [args, message] of cases) {
      // migrate takes no --url: it reaches no server at all.
      const url = args[0] === 'migrate' ? [] : ['--url', server.url]
      const result = await runCli([...args, ...url])

      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr, args.join(' ')).toMatch(message)
      // A refused value is shown, but never its control characters.
      expect(result.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/)
    }
    expect(server.requests).toEqual([])
  })

  it('refuses an API key with control characters without showing it', async () => {
    const key = 'secret-\u0001-key'

    const flag = await runCli([
      'conversations',
      '--url',
      server.url,
      '--api-key',
      key,
    ])
    const env = await runCli(['conversations', '--url', server.url], {
      PARLEY_API_KEY: key,
    })

    for (const result of [flag, env]) {
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(
        /--api-key .* control character; the key is not shown/,
      )
      expect(result.stderr).not.toContain('secret')
    }
    expect(server.requests).toEqual([])
  })

  it('names the variable at fault in a bad storage setting', async () => {
    const result = await runCli(
      ['migrate', '--database-url', '/tmp/never-made.db'],
      {
        API_SQLITE_SYNCHRONOUS: 'bogus',
      },
    )

    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(
      /^error: bad configuration: API_SQLITE_SYNCHRONOUS/,
    )
  })
})

describe('connection options before the command', () => {
  it('apply to the command that follows, its own winning', async () => {
    server.answerWith(answerAlways(200, emptyPage))

    const before = await runCli([
      '--url',
      server.url,
      '--api-key',
      'k1',
      '--json',
      'conversations',
    ])
    const both = await runCli([
      '--api-key',
      'k1',
      'conversations',
      '--url',
      server.url,
      '--api-key',
      'k2',
    ])

    expect(before.code, before.stderr).toBe(0)
    expect(JSON.parse(before.stdout).meta.total).toBe(0)
    expect(
      server.requests.map((request) => request.headers.authorization),
    ).toEqual(['Bearer k1', 'Bearer k2'])
    expect(both.code).toBe(0)
  })

  it('are a usage error before a command that calls no server', async () => {
    const migrate = await runCli(['--url', server.url, 'migrate'])
    const mock = await runCli([
      '--api-key',
      'k',
      'mock-provider',
      '--port',
      '0',
    ])

    for (const result of [migrate, mock]) {
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(
        /does not apply to `(migrate|mock-provider)`/,
      )
    }
  })
})

describe('ends a terminal user meets', () => {
  it('names a port that fetch blocks instead of saying no server answers', async () => {
    for (const port of [10080, 6000, 6667]) {
      const result = await runCli([
        'conversations',
        '--url',
        `http://127.0.0.1:${port}`,
        '--json',
      ])

      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`fetch blocks port ${port}`)
      expect(result.stderr).not.toContain('no Parley server answers')
      expect(JSON.parse(result.stdout).error.code).toBe('blocked_port')
    }
  })

  it('exits 0 quietly when the reader closes the pipe', async () => {
    const closed = await new Promise<{ code: number | null; stderr: string }>(
      (resolve) => {
        const child = spawn(
          process.execPath,
          [binPath, 'metrics', '--watch', '--url', server.url],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        )
        let stderr = ''
        child.stderr
          .setEncoding('utf8')
          .on('data', (chunk: string) => (stderr += chunk))
        child.stdout.once('data', () => child.stdout.destroy())
        child.once('exit', (code) => resolve({ code, stderr }))
      },
    )
    const closedFirst = await new Promise<{
      code: number | null
      stderr: string
    }>((resolve) => {
      const child = spawn(
        process.execPath,
        [binPath, 'metrics', '--url', server.url],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      // Closed before the command writes at all.
      child.stdout.destroy()
      let stderr = ''
      child.stderr
        .setEncoding('utf8')
        .on('data', (chunk: string) => (stderr += chunk))
      child.once('exit', (code) => resolve({ code, stderr }))
    })

    expect(closed).toEqual({ code: 0, stderr: '' })
    expect(closedFirst).toEqual({ code: 0, stderr: '' })
  })

  it('reports a full disk on standard output in one line, exit 1', async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>(
      (resolve) => {
        const child = spawn(
          '/bin/sh',
          ['-c', `"${process.execPath}" "${binPath}" --help > /dev/full`],
          {
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        )
        let stderr = ''
        child.stderr
          .setEncoding('utf8')
          .on('data', (chunk: string) => (stderr += chunk))
        child.once('exit', (code) => resolve({ code, stderr }))
      },
    )

    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      'error: cannot write to standard output: ENOSPC\n',
    )
  })

  it('keeps watching metrics through a failed refresh', async () => {
    let reads = 0
    server.answerWith(() => {
      reads += 1
      return reads === 2
        ? { status: 502, body: '<html>bad gateway</html>' }
        : { status: 200, body: { dispatch_attempts: reads } }
    })
    const watch = startCli([
      'metrics',
      '--watch',
      '--interval',
      '1',
      '--url',
      server.url,
    ])

    await watch.waitForOutput(/dispatch_attempts[^\n]*3/, 8000)
    const code = await watch.stop('SIGINT')

    expect(watch.stderr()).toMatch(
      /^error: unexpected answer .*HTTP 502.*trying again every 1 s\)\n$/,
    )
    expect(code).toBe(0)
  })

  it('redraws the watch in place on a terminal, never clearing into scrollback', async () => {
    let out = ''
    const output: CliOutput = {
      out: (text) => void (out += text),
      err: () => undefined,
      outIsTerminal: true,
    }
    const watching = run(
      ['node', 'parley', 'metrics', '--watch', '--url', server.url],
      output,
    )
    while (!out.includes('dispatch'))
      await new Promise((resolve) => setTimeout(resolve, 20))
    process.emit('SIGINT', 'SIGINT')

    expect(await watching).toBe(0)
    expect(out).not.toContain('\u001b[2J')
    expect(out.startsWith('\u001b[H')).toBe(true)
    expect(out).toContain('\u001b[K\n')
    expect(out.endsWith('\u001b[J')).toBe(true)
  })
})
