import { describe, expect, it } from 'vitest'

import { displayWidth } from '../src/format/display-width.js'
import { formatPageFooter } from '../src/format/page-footer.js'
import { toPrintable } from '../src/format/printable.js'
import { formatTable } from '../src/format/table.js'

describe('formatTable', () => {
  it('aligns columns two spaces apart under a heading line', () => {
    const table = formatTable(
      [{ header: 'ID' }, { header: 'NAME' }, { header: 'N', align: 'right' }],
      [
        ['1', 'ann', '7'],
        ['10', 'bartholomew', '1234'],
      ],
    )

    expect(table).toBe(
      [
        'ID  NAME            N',
        '1   ann             7',
        '10  bartholomew  1234',
      ].join('\n'),
    )
  })

  it('leaves no trailing whitespace after a left-aligned last column', () => {
    const table = formatTable(
      [{ header: 'A' }, { header: 'B' }],
      [
        ['x', 'long value'],
        ['y', ''],
      ],
    )

    expect(table.split('\n')).toEqual(['A  B', 'x  long value', 'y'])
  })

  it('prints only the heading when there are no rows', () => {
    expect(formatTable([{ header: 'ID' }, { header: 'TO' }], [])).toBe('ID  TO')
  })

  it('measures wide characters and emoji in terminal columns', () => {
    const table = formatTable(
      [{ header: 'WHO' }, { header: 'END' }],
      [
        ['日本', '|'],
        ['👍🏽', '|'],
        ['e\u0301', '|'],
      ],
    )

    expect(table.split('\n')).toEqual([
      'WHO   END',
      '日本  |',
      '👍🏽    |',
      'e\u0301     |',
    ])
  })

  it('keeps every row on one line and strips terminal escapes', () => {
    const table = formatTable(
      [{ header: 'SNIPPET' }, { header: 'X' }],
      [['line one\nline\ttwo\u001b[31m', 'x']],
    )

    expect(table.split('\n')).toEqual([
      `${'SNIPPET'.padEnd(22)}  X`,
      'line one line two\ufffd[31m  x',
    ])
  })

  it('rejects a row whose length does not match the columns', () => {
    expect(() => formatTable([{ header: 'A' }], [['1', '2']])).toThrow(
      new RangeError('row 0 has 2 cells; the table has 1 columns'),
    )
  })
})

describe('displayWidth', () => {
  it.each([
    ['', 0],
    ['abc', 3],
    ['日本語', 6],
    ['🇫🇷', 2],
    ['👩‍👩‍👧', 2],
    ['❤️', 2],
    ['cafe\u0301', 4],
  ])('gives %j a width of %i', (text, width) => {
    expect(displayWidth(text)).toBe(width)
  })
})

describe('toPrintable', () => {
  it('turns line breaks and tabs into spaces', () => {
    expect(toPrintable('a\r\nb\nc\td')).toBe('a b c d')
  })

  it('replaces control and bidirectional override characters', () => {
    expect(toPrintable('\u0000\u0007\u009b\u202eok')).toBe(
      '\ufffd\ufffd\ufffd\ufffdok',
    )
  })
})

describe('formatPageFooter', () => {
  const noun = { one: 'conversation', many: 'conversations' }

  it('names the next page when there is one', () => {
    expect(formatPageFooter({ page: 1, page_size: 50, total: 120 }, noun)).toBe(
      'page 1 of 3, 120 conversations in all (next: --page 2)',
    )
  })

  it('counts one item in the singular and an empty list as one page', () => {
    expect(formatPageFooter({ page: 1, page_size: 50, total: 1 }, noun)).toBe(
      'page 1 of 1, 1 conversation in all',
    )
    expect(formatPageFooter({ page: 1, page_size: 50, total: 0 }, noun)).toBe(
      'page 1 of 1, 0 conversations in all',
    )
  })
})
