import type { ListBody } from '../api/types.js'
import { formatPageFooter, type ItemNoun } from './page-footer.js'
import { formatTable, type TableColumn, type TableOptions } from './table.js'

/**
 * A listed page for people: its items as a table, one row of `cells` each
 * (a missing value prints as empty), then the page footer. An empty page
 * says so in one line instead of printing a lone heading.
 *
 * @example
 * formatListPage(page, nouns, columns, (item) => [item.id, item.channel])
 * // 'ID  CHANNEL\n10  email\n\npage 1 of 1, 1 conversation in all\n'
 */
export function formatListPage<Item>(
  page: ListBody<Item>,
  noun: ItemNoun,
  columns: readonly TableColumn[],
  cells: (item: Item) => readonly unknown[],
  tableOptions: TableOptions = {},
): string {
  const footer = formatPageFooter(page.meta, noun)
  if (page.items.length === 0) return `no ${noun.many} here; ${footer}\n`

  const rows = page.items.map((item) =>
    cells(item).map((value) => String(value ?? '')),
  )
  return `${formatTable(columns, rows, tableOptions)}\n\n${footer}\n`
}
