import type { ListMeta } from '../api/types.js'

/** How to name the items of a list, in the singular and the plural. */
export interface ItemNoun {
  one: string
  many: string
}

/**
 * The line under a listed page: where the page is, how many items there
 * are in all, and the flag that shows the next page when there is one.
 *
 * @example
 * formatPageFooter({ page: 1, page_size: 50, total: 120 }, nouns)
 * // 'page 1 of 3, 120 conversations in all (next: --page 2)'
 */
export function formatPageFooter(meta: ListMeta, noun: ItemNoun): string {
  const pages = Math.max(1, Math.ceil(meta.total / Math.max(1, meta.page_size)))
  const count = `${meta.total} ${meta.total === 1 ? noun.one : noun.many}`
  const next = meta.page < pages ? ` (next: --page ${meta.page + 1})` : ''
  return `page ${meta.page} of ${pages}, ${count} in all${next}`
}
