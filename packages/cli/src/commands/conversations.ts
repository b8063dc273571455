import type { Command } from 'commander'

import type { ConversationItem } from '../api/types.js'
import { formatJson } from '../format/json.js'
import { formatListPage } from '../format/list-page.js'
import type { TableColumn } from '../format/table.js'
import type { CliOutput } from '../output.js'
import {
  addListOptions,
  fetchListPage,
  type ListCommandOptions,
} from './list-command.js'

const columns: TableColumn[] = [
  { header: 'ID', align: 'right' },
  { header: 'CHANNEL' },
  { header: 'PARTICIPANTS' },
  { header: 'MESSAGES', align: 'right' },
  { header: 'LAST ACTIVITY' },
]

const noun = { one: 'conversation', many: 'conversations' }

/** Registers `parley conversations` on the program. */
export function registerConversationsCommand(
  program: Command,
  output: CliOutput,
): void {
  const command = program
    .command('conversations')
    .description('list conversations, most recently active first')
  addListOptions(
    command,
    '$ parley conversations --page 2 --page-size 20',
  ).action((options: ListCommandOptions) => listConversations(options, output))
}

async function listConversations(
  options: ListCommandOptions,
  output: CliOutput,
): Promise<void> {
  const page = await fetchListPage<ConversationItem>(
    'api/conversations',
    options,
  )

  output.out(
    options.json
      ? formatJson(page)
      : formatListPage(page, noun, columns, conversationCells),
  )
}

function conversationCells(item: ConversationItem): unknown[] {
  return [
    item.id,
    item.channel,
    `${item.participant_a} <-> ${item.participant_b}`,
    item.message_count,
    item.last_activity_at,
  ]
}
