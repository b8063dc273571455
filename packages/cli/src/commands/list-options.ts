import type { Command } from 'commander'

import type { ListBody } from '../api/types.js'
import { UnexpectedResponseError } from '../errors.js'
import { parsePageSize, parsePositiveInteger } from './parsers.js'

/** The paging options of a command that lists. */
export interface PageOptions {
  page?: number
  pageSize?: number
}

/** Adds --page and --page-size to a command that lists. */
export function addPageOptions(command: Command): Command {
  return command
    .option(
      '--page <n>',
      'the page to show, from 1 (default: 1)',
      parsePositiveInteger,
    )
    .option(
      '--page-size <n>',
      "items per page, up to 200; 0 is the server's default (50)",
      parsePageSize,
    )
}

/** The query string for the paging options; unset options are left out. */
export function pageQuery(options: PageOptions): Record<string, number> {
  const query: Record<string, number> = {}
  if (options.page !== undefined) query.page = options.page
  if (options.pageSize !== undefined) query.pageSize = options.pageSize
  return query
}

/**
 * Checks that a 200 answer has the shape of a list page, so that a wrong
 * server gives a clear error rather than a crash while printing.
 */
export function checkListBody<Item>(
  body: unknown,
  url: string,
): ListBody<Item> {
  const { items, meta } = (body ?? {}) as Partial<ListBody<Item>>
  if (Array.isArray(items) && typeof meta === 'object' && meta !== null) {
    return body as ListBody<Item>
  }
  throw new UnexpectedResponseError(url, 200, 'not a list of items')
}
