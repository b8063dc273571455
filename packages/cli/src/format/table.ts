import { displayWidth } from './display-width.js'
import { toPrintable } from './printable.js'

/** One column of a table. */
export interface TableColumn {
  /** The heading, printed as given on the first line. */
  header: string
  /**
   * Which side the cells line up on; numbers read best on the right.
   * @default 'left'
   */
  align?: 'left' | 'right'
}

const gap = '  '

/**
 * Lays rows out as an aligned plain-text table with a heading line, columns
 * separated by two spaces, and no trailing whitespace. Cells are made
 * printable first (see `toPrintable`) and measured in terminal columns, so
 * wide characters and emoji keep the columns straight.
 *
 * @example
 * formatTable([{ header: 'ID' }, { header: 'N', align: 'right' }], [
 *   ['1', '12'],
 * ])
 * // 'ID   N\n1   12'
 *
 * @throws RangeError when a row has not exactly one cell per column.
 */
export function formatTable(
  columns: readonly TableColumn[],
  rows: readonly (readonly string[])[],
): string {
  rows.forEach((row, index) => checkRowLength(row, index, columns.length))

  const lines = [columns.map((column) => column.header), ...rows].map((row) =>
    row.map(toPrintable),
  )
  const widths = columns.map((_, index) =>
    Math.max(...lines.map((line) => displayWidth(line[index] ?? ''))),
  )

  return lines.map((line) => formatLine(line, columns, widths)).join('\n')
}

function checkRowLength(
  row: readonly string[],
  index: number,
  expected: number,
): void {
  if (row.length === expected) return
  throw new RangeError(
    `row ${index} has ${row.length} cells; the table has ${expected} columns`,
  )
}

function formatLine(
  cells: readonly string[],
  columns: readonly TableColumn[],
  widths: readonly number[],
): string {
  const padded = cells.map((cell, index) =>
    pad(cell, widths[index] ?? 0, columns[index]?.align ?? 'left'),
  )
  return padded.join(gap).trimEnd()
}

function pad(cell: string, width: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(cell)))
  return align === 'right' ? fill + cell : cell + fill
}
