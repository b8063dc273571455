import type { Command } from 'commander'

import type { ListBody, MessageItem } from '../api/types.js'
import { formatJson } from '../format/json.js'
import { formatPageFooter } from '../format/page-footer.js'
import { formatTable, type TableColumn } from '../format/table.js'
import { hintNotFound } from '../errors.js'
import type { CliOutput } from '../output.js'
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
import { parseId } from './parsers.js'

interface MessagesOptions extends ConnectionOptions, PageOptions {}

const columns: TableColumn[] = [
  { header: 'ID', align: 'right' },
  { header: 'TIME' },
  { header: 'DIRECTION' },
  { header: 'CHANNEL' },
  { header: 'FROM' },
  { header: 'TO' },
  { header: 'STATUS' },
  { header: 'SNIPPET' },
]

const noun = { one: 'message', many: 'messages' }

/** Registers `parley messages <conversation-id>` on the program. */
export function registerMessagesCommand(
  program: Command,
  output: CliOutput,
): void {
  const command = program
    .command('messages')
    .description("list a conversation's messages, oldest first")
    .argument('<conversation-id>', 'the conversation, by id', parseId)
  addPageOptions(command)
  addConnectionOptions(command)
    .addHelpText('after', example('$ parley messages 3 --page-size 100'))
    .action((id: string, options: MessagesOptions) =>
      listMessages(id, options, output),
    )
}

async function listMessages(
  conversationId: string,
  options: MessagesOptions,
  output: CliOutput,
): Promise<void> {
  // parseId allows digits only, so the id cannot change the path.
  const response = await hintNotFound(
    createClient(options).get<unknown>(
      `api/conversations/${conversationId}/messages`,
      pageQuery(options),
    ),
    'list conversations and their ids with `parley conversations`',
  )
  const page = checkListBody<MessageItem>(response.body, options.url)

  output.out(options.json ? formatJson(page) : formatMessages(page))
}

function formatMessages(page: ListBody<MessageItem>): string {
  const footer = formatPageFooter(page.meta, noun)
  if (page.items.length === 0) return `no messages here; ${footer}\n`

  const rows = page.items.map((item) =>
    [
      item.id,
      item.timestamp,
      item.direction,
      item.channel,
      item.from,
      item.to,
      item.status,
      item.snippet,
    ].map((value) => String(value ?? '')),
  )
  return `${formatTable(columns, rows)}\n\n${footer}\n`
}
