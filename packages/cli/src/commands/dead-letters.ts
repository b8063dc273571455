import { Option, type Command } from 'commander'

import type {
  DeadLetterItem,
  ListBody,
  QueueName,
  RetryAcceptedBody,
} from '../api/types.js'
import { formatJson } from '../format/json.js'
import { formatListPage } from '../format/list-page.js'
import { toPrintable } from '../format/printable.js'
import type { TableColumn } from '../format/table.js'
import { hintNotFound } from '../errors.js'
import { outputWidth, type CliOutput } from '../output.js'
import {
  addConnectionOptions,
  createClient,
  type ConnectionOptions,
} from './connection-options.js'
import { example } from './help-text.js'
import {
  addListOptions,
  fetchListPage,
  type ListCommandOptions,
} from './list-command.js'

interface ListOptions extends ListCommandOptions {
  queue: QueueName
}

const queues: readonly QueueName[] = ['dispatch', 'inbound']

/** The column that names what failed: a message, or a provider's event. */
const subjectColumns: Record<QueueName, TableColumn> = {
  dispatch: { header: 'MESSAGE', align: 'right' },
  inbound: { header: 'PROVIDER ID' },
}

/** Registers `parley dead-letters [list]` and `... retry` on the program. */
export function registerDeadLettersCommand(
  program: Command,
  output: CliOutput,
): void {
  const deadLetters = program
    .command('dead-letters')
    .description('list and replay messages that failed for good')
    .addHelpText(
      'after',
      '\nWithout a command, lists dead letters: see `parley dead-letters ' +
        'list --help`.\n' +
        example(
          '$ parley dead-letters --queue inbound\n' +
            '$ parley dead-letters retry 17',
        ),
    )
  addListCommand(deadLetters, output)
  addRetryCommand(deadLetters, output)
}

function addListCommand(deadLetters: Command, output: CliOutput): void {
  const command = deadLetters
    .command('list', { isDefault: true })
    .description(
      "list one queue's dead letters, most recent first (the default)",
    )
    .addOption(
      new Option('--queue <queue>', 'the queue to list')
        .choices(queues)
        .default('dispatch'),
    )
  addListOptions(
    command,
    '$ parley dead-letters list --queue inbound --page 2',
  ).action((options: ListOptions) => listDeadLetters(options, output))
}

interface RetryOptions extends ConnectionOptions {
  queue?: QueueName
}

function addRetryCommand(deadLetters: Command, output: CliOutput): void {
  const command = deadLetters
    .command('retry')
    .description(
      'put a dead letter back in its queue with a fresh attempt count',
    )
    .usage('[options] [dispatch|inbound] <id>')
    .argument(
      '<queue-or-id>',
      'the id, as listed; or the queue (dispatch, inbound), then the id',
    )
    .argument('[id]', 'the id, when the queue comes first')
    .addOption(
      new Option(
        '--queue <queue>',
        'the queue that holds it (default: dispatch)',
      ).choices(queues),
    )
  addConnectionOptions(command)
    .addHelpText(
      'after',
      example(
        '$ parley dead-letters retry 17\n' +
          '$ parley dead-letters retry 4 --queue inbound\n' +
          '$ parley dead-letters retry inbound 4',
      ),
    )
    .action(
      (first: string, second: string | undefined, options: RetryOptions) => {
        const { queue, id } = retryTarget(first, second, options, command)
        return retryDeadLetter(queue, id, options, output)
      },
    )
}

// `retry <id>` with --queue, or `retry <queue> <id>` as the route reads.
function retryTarget(
  first: string,
  second: string | undefined,
  options: RetryOptions,
  command: Command,
): { queue: QueueName; id: string } {
  const usage = (message: string): never =>
    command.error(`error: ${message}`, {
      exitCode: 2,
      code: 'parley.retryTarget',
    })
  if (second === undefined) {
    return { queue: options.queue ?? 'dispatch', id: checkId(first, usage) }
  }
  if (!(queues as readonly string[]).includes(first)) {
    return usage(`unknown queue '${first}'; expected dispatch or inbound`)
  }
  if (options.queue !== undefined && options.queue !== first) {
    return usage(
      `the queue is named twice: ${first} and --queue ${options.queue}`,
    )
  }
  return { queue: first as QueueName, id: checkId(second, usage) }
}

function checkId(value: string, usage: (message: string) => never): string {
  if (/^\d+$/.test(value)) return value
  return usage(`id '${value}' is not an id: expected decimal digits`)
}

async function listDeadLetters(
  options: ListOptions,
  output: CliOutput,
): Promise<void> {
  const page = await fetchListPage<DeadLetterItem>(
    'api/dead-letters',
    options,
    { query: { queue: options.queue } },
  )

  output.out(
    options.json
      ? formatJson(page)
      : formatDeadLetters(page, options.queue, outputWidth(output)),
  )
}

function formatDeadLetters(
  page: ListBody<DeadLetterItem>,
  queue: QueueName,
  width: number,
): string {
  const noun = { one: `${queue} dead letter`, many: `${queue} dead letters` }
  const columns: TableColumn[] = [
    { header: 'ID', align: 'right' },
    subjectColumns[queue],
    { header: 'ATTEMPTS', align: 'right' },
    { header: 'FAILED AT' },
    { header: 'LAST ERROR' },
  ]
  const cells = (item: DeadLetterItem): unknown[] => [
    item.id,
    queue === 'dispatch' ? item.message_id : item.provider_message_id,
    item.attempts,
    item.failed_at,
    item.last_error,
  ]
  return formatListPage(page, noun, columns, cells, { maxWidth: width })
}

async function retryDeadLetter(
  queue: QueueName,
  id: string,
  options: ConnectionOptions,
  output: CliOutput,
): Promise<void> {
  // The queue is one of two names and checkId allows digits only, so
  // neither can change the path. The route reads no body.
  const response = await hintNotFound(
    createClient(options).post<RetryAcceptedBody>(
      `api/dead-letters/${queue}/${id}/retry`,
      undefined,
    ),
    `list them with \`parley dead-letters --queue ${queue}\``,
  )

  output.out(
    options.json ? formatJson(response.body) : formatRetried(response.body),
  )
}

function formatRetried(body: RetryAcceptedBody): string {
  const line =
    `dead letter ${body.id} is back in the ${body.queue} queue ` +
    'with a fresh attempt count'
  return toPrintable(line) + '\n'
}
