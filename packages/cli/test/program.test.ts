/**
 * The program in process: help for every command, and when colour is on.
 */
import type { Command } from 'commander'
import { afterEach, describe, expect, it } from 'vitest'

import { formatErrorReport } from '../src/format/error-report.js'
import { colorEnabled, errColors, type CliOutput } from '../src/output.js'
import { createProgram, run } from '../src/program.js'
import { ServerUnreachableError } from '../src/errors.js'

/** A CliOutput that keeps what is written. */
function capture(terminal = false): CliOutput & { text: () => string } {
  let text = ''
  return {
    out: (chunk) => void (text += chunk),
    err: (chunk) => void (text += chunk),
    columns: 80,
    outIsTerminal: terminal,
    errIsTerminal: terminal,
    text: () => text,
  }
}

function everyCommand(command: Command, path: string[] = []): string[][] {
  return command.commands
    .filter((sub) => sub.name() !== 'help')
    .flatMap((sub) => [
      [...path, sub.name()],
      ...everyCommand(sub, [...path, sub.name()]),
    ])
}

const commands = everyCommand(createProgram(capture()))

describe('help', () => {
  it('lists every command in parley --help, each with a one-line description', async () => {
    const output = capture()

    expect(await run(['node', 'parley', '--help'], output)).toBe(0)

    const listing = output.text().split('Commands:\n')[1]?.split('\n\n')[0]
    const lines = listing?.split('\n') ?? []
    const topLevel = commands.filter((path) => path.length === 1)
    // One line per command (and `help`): no description wraps.
    expect(lines).toHaveLength(topLevel.length + 1)
    for (const [name] of topLevel) {
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^  ${name}\\b.* {2}\\w`)),
      )
    }
  })

  it.each(commands.map((path) => [path.join(' '), path]))(
    'shows an example in parley %s --help',
    async (_, path) => {
      const output = capture()

      expect(await run(['node', 'parley', ...path, '--help'], output)).toBe(0)

      expect(output.text()).toMatch(/\nExample:\n {2}\$ .*parley /)
    },
  )
})

describe('colour', () => {
  const saved = process.env.NO_COLOR
  afterEach(() => {
    if (saved === undefined) delete process.env.NO_COLOR
    else process.env.NO_COLOR = saved
  })

  it('is on only for a terminal, and never with NO_COLOR or TERM=dumb', () => {
    expect(colorEnabled(true, {})).toBe(true)
    expect(colorEnabled(false, {})).toBe(false)
    expect(colorEnabled(undefined, {})).toBe(false)
    expect(colorEnabled(true, { NO_COLOR: '1' })).toBe(false)
    expect(colorEnabled(true, { NO_COLOR: '' })).toBe(true)
    expect(colorEnabled(true, { TERM: 'dumb' })).toBe(false)
  })

  it('colours an error on a terminal, and not once NO_COLOR is set', () => {
    delete process.env.NO_COLOR
    const error = new ServerUnreachableError(
      'http://127.0.0.1:9',
      'ECONNREFUSED',
    )

    const coloured = formatErrorReport(error, errColors(capture(true)))
    process.env.NO_COLOR = '1'
    const plain = formatErrorReport(error, errColors(capture(true)))

    expect(coloured).toContain('\u001b[31merror:\u001b[39m')
    expect(plain).toMatch(/^error: no Parley server answers/)
    expect(plain).not.toContain('\u001b')
  })
})
