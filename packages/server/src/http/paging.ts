import type { Page } from '@parley/core'

/**
 * Reads `page` and `pageSize` for core, which checks them: one rule and one
 * message for every bad value. Empty or absent is the default.
 */
export function pageRequest(query: URLSearchParams): {
  page?: number
  pageSize?: number
} {
  return {
    page: readInteger(query, 'page'),
    pageSize: readInteger(query, 'pageSize'),
  }
}

function readInteger(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name)
  if (raw === null || raw === '') return undefined
  // Not plain decimal digits (a sign, a fraction, letters, a space): NaN,
  // which core refuses exactly as it refuses 0 or a page past the maximum,
  // rather than a message of this file's own.
  if (!/^[0-9]+$/.test(raw)) return Number.NaN
  // Huge values stay huge (core clamps a page size, refuses a page).
  return Math.min(Number(raw), Number.MAX_SAFE_INTEGER)
}

/** The list envelope: items plus page, page size and total. */
export function pageBody<T>(
  page: Page<T>,
  toJson: (item: T) => unknown,
): unknown {
  return {
    items: page.items.map(toJson),
    meta: { page: page.page, page_size: page.pageSize, total: page.total },
  }
}
