import { describe, expect, it } from 'vitest'

import { cutToWidth, displayWidth } from '../src/format/display-width.js'
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

  it('cuts the last column so that lines fit maxWidth', () => {
    const table = formatTable(
      [{ header: 'ID', align: 'right' }, { header: 'ERROR' }],
      [
        ['7', 'short'],
        ['12', 'connection refused by the provider'],
      ],
      { maxWidth: 16 },
    )

    expect(table.split('\n')).toEqual([
      'ID  ERROR',
      ' 7  short',
      '12  connection…',
    ])
  })

  it('keeps at least 10 columns, and the heading, when cutting', () => {
    const rows = [['1', 'connection refused by the provider']]

    const short = formatTable(
      [{ header: 'A VERY LONG ID' }, { header: 'ERROR' }],
      rows,
      { maxWidth: 20 },
    )
    const long = formatTable(
      [{ header: 'A VERY LONG ID' }, { header: 'LAST ERROR MESSAGE' }],
      rows,
      { maxWidth: 20 },
    )

    expect(short.split('\n')[1]).toBe('1               connectio…')
    expect(long.split('\n')[1]).toBe('1               connection refuse…')
  })

  it('cuts the printable text, never the escapes it replaced', () => {
    const table = formatTable(
      [{ header: 'ID' }, { header: 'ERROR' }],
      [['1', 'a\u001b[31mred\nline that goes on']],
      { maxWidth: 16 },
    )

    expect(table.split('\n')[1]).toBe('1   a\ufffd[31mred l…')
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

describe('cutToWidth', () => {
  it.each([
    ['connection refused', 18, 'connection refused'],
    ['connection refused', 17, 'connection refus…'],
    ['connection refused', 12, 'connection…'],
    ['connection refused', 10, 'connectio…'],
    ['日本語テキスト', 7, '日本語…'],
    ['👍🏽 ok then', 4, '👍🏽…'],
    ['cafe\u0301 au lait', 5, 'cafe\u0301…'],
    ['abc', 1, '…'],
    ['abc', 0, ''],
  ])('cuts %j to %i columns as %j', (text, width, cut) => {
    expect(cutToWidth(text, width)).toBe(cut)
    expect(displayWidth(cut)).toBeLessThanOrEqual(width)
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
