import type { Command } from 'commander'

import type { ListBody } from '../api/types.js'
import { hintNotFound } from '../errors.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import {
  addPageOptions,
  checkListBody,
  pageQuery,
  type PageOptions,
} from './list-options.js'

/** The options every command that lists a page of items shares. */
export interface ListCommandOptions extends ConnectionOptions, PageOptions {}

/** What a list command asks for besides the page. */
export interface FetchPageOptions {
  /** Query parameters of the command's own, sent before the paging ones. */
  query?: Record<string, string>
  /** The hint to show when the server answers 404 `not_found`. */
  notFoundHint?: string
}

/**
 * Adds the paging options, then the connection options, then `exampleText`
 * under the help: the order in which every list command shows them.
 */
export function addListOptions(command: Command, exampleText: string): Command {
  addPageOptions(command)
  return addConnectionOptions(command).addHelpText(
    'after',
    example(exampleText),
  )
}

/**
 * Reads the page the options ask for from `path` and checks that it is a
 * list, so that each list command differs only in what it prints.
 */
export async function fetchListPage<Item>(
  path: string,
  options: ListCommandOptions,
  { query = {}, notFoundHint }: FetchPageOptions = {},
): Promise<ListBody<Item>> {
  const request = createClient(options).get<unknown>(path, {
    ...query,
    ...pageQuery(options),
  })
  const response =
    notFoundHint === undefined
      ? await request
      : await hintNotFound(request, notFoundHint)

  return checkListBody<Item>(response.body, options.url)
}
