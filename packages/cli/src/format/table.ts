import { cutToWidth, displayWidth } from './display-width.js'
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

/** How a table is laid out as a whole. */
export interface TableOptions {
  /**
   * The widest a line may be, in terminal columns, such as the terminal's
   * width. Cells of the last column are cut to fit, ending in `…`; the
   * column keeps at least its heading's width and 10 columns, so lines can
   * still be wider when the other columns alone take the room.
   * @default no limit
   */
  maxWidth?: number
}

const gap = '  '

// The least room a cut last column keeps, so that it still says something.
const minCutWidth = 10

/**
 * Lays rows out as an aligned plain-text table with a heading line, columns
 * separated by two spaces, and no trailing whitespace. Cells are made
 * printable first (see `toPrintable`) and measured in terminal columns, so
 * wide characters and emoji keep the columns straight. With `maxWidth`, the
 * last column is cut to fit (see `TableOptions`).
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
  options: TableOptions = {},
): string {
  rows.forEach((row, index) => checkRowLength(row, index, columns.length))

  const printable = [columns.map((column) => column.header), ...rows].map(
    (row) => row.map(toPrintable),
  )
  const lines =
    options.maxWidth === undefined
      ? printable
      : cutLastColumn(printable, options.maxWidth)
  const widths = columnWidths(lines, columns.length)

  return lines.map((line) => formatLine(line, columns, widths)).join('\n')
}

function columnWidths(lines: readonly string[][], count: number): number[] {
  return Array.from({ length: count }, (_, index) =>
    Math.max(...lines.map((line) => displayWidth(line[index] ?? ''))),
  )
}

// The heading line comes first and is never cut: the room left is at least
// its width.
function cutLastColumn(lines: string[][], maxWidth: number): string[][] {
  const [heading = []] = lines
  const last = heading.length - 1
  if (last < 0) return lines

  const others = columnWidths(lines, last)
  const taken = others.reduce((sum, width) => sum + width + gap.length, 0)
  const room = Math.max(
    maxWidth - taken,
    minCutWidth,
    displayWidth(heading[last] ?? ''),
  )
  return lines.map((line) =>
    line.with(last, cutToWidth(line[last] ?? '', room)),
  )
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
