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
  /**
   * Styles the text of each body cell, such as colouring a status. It is
   * applied after the cell is measured, so escape codes never widen it.
   * @default the text as it is
   */
  style?: (text: string) => string
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
  /**
   * Styles each heading, such as making it dim; applied after measuring.
   * @default the heading as it is
   */
  headingStyle?: (text: string) => string
  /**
   * The least width of each column, in terminal columns, so that several
   * tables printed one after another line up.
   * @default none
   */
  minWidths?: readonly number[]
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
  const widths = columnWidths(lines, columns.length).map((width, index) =>
    Math.max(width, options.minWidths?.[index] ?? 0),
  )

  return lines
    .map((line, index) =>
      formatLine(line, columns, widths, (column) =>
        index === 0 ? options.headingStyle : column.style,
      ),
    )
    .join('\n')
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

type Style = ((text: string) => string) | undefined

function formatLine(
  cells: readonly string[],
  columns: readonly TableColumn[],
  widths: readonly number[],
  styleOf: (column: TableColumn) => Style,
): string {
  const padded = cells.map((cell, index) => {
    const column = columns[index] ?? {}
    return pad(
      cell,
      widths[index] ?? 0,
      column.align ?? 'left',
      styleOf(column),
    )
  })
  return padded.join(gap).trimEnd()
}

// The fill goes outside the style, so that a line still ends without
// trailing whitespace once trimmed.
function pad(
  cell: string,
  width: number,
  align: 'left' | 'right',
  style: Style,
): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(cell)))
  const text = style === undefined || cell === '' ? cell : style(cell)
  return align === 'right' ? fill + text : text + fill
}
