/**
 * Under --json a failing command prints one JSON error document on stdout
 * (its human report still on stderr), with the usual exit code.
 */
import { beforeAll, describe, expect, it } from 'vitest'

import { version } from '../src/version.js'
import { answerByRoute, deadServerUrl, useFakeServer } from './fake-server.js'
import { assertBuilt, runCli } from './run-cli.js'

beforeAll(assertBuilt)

const server = useFakeServer(
  answerByRoute({
    'POST /api/dead-letters/dispatch/1/retry': {
      status: 409,
      body: { code: 'conflict', message: 'not dead', request_id: 'r-1' },
    },
  }),
)

describe('--json when the command fails', () => {
  it('prints one error document for server errors, a dead server and usage errors', async () => {
    const dead = await deadServerUrl()
    const cases = [
      {
        args: ['message', '999', '--url', server.url],
        code: 1,
        error: { code: 'not_found', status: 404, request_id: 'r-404' },
      },
      {
        args: [
          'dead-letters',
          'retry',
          '1',
          '--queue',
          'dispatch',
          '--url',
          server.url,
        ],
        code: 1,
        error: { code: 'conflict', status: 409 },
      },
      {
        args: ['conversations', '--url', dead],
        code: 1,
        error: { code: 'server_unreachable' },
      },
      {
        args: ['metrics', '--url', dead],
        code: 1,
        error: { code: 'server_unreachable' },
      },
      { args: ['messages', 'abc'], code: 2, error: { code: 'usage' } },
      { args: ['send', 'sms', '--bogus'], code: 2, error: { code: 'usage' } },
      {
        args: [],
        code: 2,
        error: {
          code: 'usage',
          message: expect.stringMatching(/a command is needed/),
        },
      },
      { args: ['dead-letters', 'retry'], code: 2, error: { code: 'usage' } },
    ]

    for (const { args, code, error } of cases) {
      const result = await runCli([...args, '--json'])

      expect(result.code, args.join(' ')).toBe(code)
      expect(result.stderr).toMatch(/error/)
      const document = JSON.parse(result.stdout)
      expect(Object.keys(document)).toEqual(['error'])
      expect(document.error).toMatchObject({
        message: expect.any(String),
        ...error,
      })
      expect(document.error.message).not.toMatch(/outputHelp/)
    }
  })

  it('prints the version as JSON', async () => {
    const result = await runCli(['--version', '--json'])

    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ version })
  })
})
