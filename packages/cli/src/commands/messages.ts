import type { Command } from 'commander'

import type { MessageItem } from '../api/types.js'
import { formatJson } from '../format/json.js'
import { formatListPage } from '../format/list-page.js'
import type { TableColumn } from '../format/table.js'
import type { CliOutput } from '../output.js'
import {
  addListOptions,
  fetchListPage,
  type ListCommandOptions,
} from './list-command.js'
import { parseId } from './parsers.js'

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
  addListOptions(command, '$ parley messages 3 --page-size 100').action(
    (id: string, options: ListCommandOptions) =>
      listMessages(id, options, output),
  )
}

async function listMessages(
  conversationId: string,
  options: ListCommandOptions,
  output: CliOutput,
): Promise<void> {
  // parseId allows digits only, so the id cannot change the path.
  const page = await fetchListPage<MessageItem>(
    `api/conversations/${conversationId}/messages`,
    options,
    {
      notFoundHint:
        'list conversations and their ids with `parley conversations`',
    },
  )

  output.out(
    options.json
      ? formatJson(page)
      : formatListPage(page, noun, columns, messageCells),
  )
}

function messageCells(item: MessageItem): unknown[] {
  return [
    item.id,
    item.timestamp,
    item.direction,
    item.channel,
    item.from,
    item.to,
    item.status,
    item.snippet,
  ]
}
