import type { Page } from '@parley/core'
import { HttpError } from './http-error.js'

/** Reads `page` and `pageSize`: decimal integers; core checks their range. */
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
  if (!/^[0-9]+$/.test(raw)) {
    throw new HttpError(
      'validation_failed',
      `${name} must be a positive integer`,
      {},
      [{ field: name, message: 'must be a positive integer' }],
    )
  }
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
