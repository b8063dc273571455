/**
 * A server URL with credentials is bad usage (exit 2), before any request,
 * whichever command it comes to and however it is given: fetch refuses such
 * a URL, which would otherwise read as "no server answers".
 */
import type { Command } from 'commander'
import { afterEach, describe, expect, it, vi } from 'vitest'

import type { CliOutput } from '../src/output.js'
import { createProgram, run } from '../src/program.js'
import { answerAlways, emptyPage, useFakeServer } from './fake-server.js'

const server = useFakeServer(answerAlways(200, emptyPage))

/** A CliOutput that keeps what is written. */
function capture(): CliOutput & { out_: () => string; err_: () => string } {
  let out = ''
  let err = ''
  return {
    out: (chunk) => void (out += chunk),
    err: (chunk) => void (err += chunk),
    out_: () => out,
    err_: () => err,
  }
}

// Every command, however deep, that takes --url.
function urlCommands(command: Command, path: string[] = []): string[][] {
  return command.commands.flatMap((sub) => {
    const own = [...path, sub.name()]
    const takesUrl = sub.options.some((option) => option.long === '--url')
    return [...(takesUrl ? [own] : []), ...urlCommands(sub, own)]
  })
}

const commands = urlCommands(createProgram(capture()))

/** The fake server's URL with `userinfo` (such as `user:pw`) in it. */
const withUserinfo = (userinfo: string) =>
  server.url.replace('http://', `http://${userinfo}@`)

const CREDENTIALS = ['user:s3cret', 'user', ':s3cret', 'user:']

async function expectRefused(args: string[], json = false): Promise<void> {
  const output = capture()

  expect(await run(['node', 'parley', ...args], output), args.join(' ')).toBe(2)

  expect(output.err_()).toMatch(
    /^error: --url \(or PARLEY_URL\) holds credentials .* --api-key/,
  )
  expect(output.err_() + output.out_()).not.toContain('s3cret')
  if (json) expect(JSON.parse(output.out_()).error.code).toBe('usage')
  expect(server.requests).toEqual([])
}

describe('a server URL with credentials', () => {
  afterEach(() => void vi.unstubAllEnvs())

  it('is found on enough commands for the test to mean something', () => {
    expect(commands.length).toBeGreaterThanOrEqual(8)
    expect(commands).toContainEqual(['conversations'])
    expect(commands).toContainEqual(['send', 'sms'])
  })

  it.each(commands.map((path) => [path.join(' '), path]))(
    'is refused by parley %s --url',
    async (_, path) => {
      for (const userinfo of CREDENTIALS)
        await expectRefused([...path, '--url', withUserinfo(userinfo)])
    },
  )

  it.each(commands.map((path) => [path.join(' '), path]))(
    'is refused by parley --url ... %s',
    async (_, path) => {
      await expectRefused(['--url', withUserinfo('user:s3cret'), ...path])
    },
  )

  it.each(commands.map((path) => [path.join(' '), path]))(
    'is refused by parley %s from PARLEY_URL',
    async (_, path) => {
      vi.stubEnv('PARLEY_URL', withUserinfo('user:s3cret'))
      await expectRefused(path)
    },
  )

  it('is refused as a usage error document under --json', async () => {
    await expectRefused(
      ['conversations', '--json', '--url', withUserinfo('user:s3cret')],
      true,
    )
  })

  it('is not refused when --url without credentials overrides PARLEY_URL', async () => {
    vi.stubEnv('PARLEY_URL', withUserinfo('user:s3cret'))
    const output = capture()

    expect(
      await run(
        ['node', 'parley', 'conversations', '--url', server.url],
        output,
      ),
    ).toBe(0)
    expect(server.requests).toHaveLength(1)
  })
})
