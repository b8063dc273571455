import type { Command } from 'commander'

import type { ConversationItem, ListBody } from '../api/types.js'
import { formatJson } from '../format/json.js'
import { formatPageFooter } from '../format/page-footer.js'
import { formatTable, type TableColumn } from '../format/table.js'
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

interface ConversationsOptions extends ConnectionOptions, PageOptions {}

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
  addPageOptions(command)
  addConnectionOptions(command)
    .addHelpText(
      'after',
      example('$ parley conversations --page 2 --page-size 20'),
    )
    .action((options: ConversationsOptions) =>
      listConversations(options, output),
    )
}

async function listConversations(
  options: ConversationsOptions,
  output: CliOutput,
): Promise<void> {
  const response = await createClient(options).get<unknown>(
    'api/conversations',
    pageQuery(options),
  )
  const page = checkListBody<ConversationItem>(response.body, options.url)

  output.out(options.json ? formatJson(page) : formatConversations(page))
}

function formatConversations(page: ListBody<ConversationItem>): string {
  const footer = formatPageFooter(page.meta, noun)
  if (page.items.length === 0) return `no conversations here; ${footer}\n`

  const rows = page.items.map((item) =>
    [
      item.id,
      item.channel,
      `${item.participant_a} <-> ${item.participant_b}`,
      item.message_count,
      item.last_activity_at,
    ].map((value) => String(value ?? '')),
  )
  return `${formatTable(columns, rows)}\n\n${footer}\n`
}
