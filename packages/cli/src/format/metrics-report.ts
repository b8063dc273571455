import type { MetricsBody } from '../api/types.js'
import type { Colors } from '../output.js'
import { formatTable, type TableColumn } from './table.js'

/** A group of metrics as `parley metrics` shows them. */
interface MetricGroup {
  title: string
  /** Takes the fields whose name starts with one of these. */
  prefixes: readonly string[]
}

// In the order of the data flow: the HTTP edge, outbound dispatch, the
// providers behind it, the inbound worker, threading. A field no group
// takes (one a newer server adds) is shown under "other".
const groups: readonly MetricGroup[] = [
  {
    title: 'HTTP edge',
    prefixes: ['rate_limited', 'breaker_'],
  },
  { title: 'dispatch', prefixes: ['dispatch_', 'invalid_routing'] },
  { title: 'providers: SMS and MMS', prefixes: ['provider_sms_mms_'] },
  { title: 'providers: email', prefixes: ['provider_email_'] },
  { title: 'inbound worker', prefixes: ['worker_'] },
  { title: 'conversations', prefixes: ['conversations_'] },
]

/** Fields that are not counters, so a change per second means nothing. */
const gauges = new Set([
  'ts_unix_ms',
  'worker_latency_avg_us',
  'worker_latency_max_us',
])

/** What the report is made from. */
export interface MetricsReportInput {
  /** The server's URL, for the heading. */
  url: string
  /** The latest document. */
  current: MetricsBody
  /**
   * The document before, for `--watch`: adds a column with each counter's
   * change per second since then.
   */
  previous?: MetricsBody | undefined
  colors: Colors
}

/**
 * The metrics document as people read it: a heading with the server's
 * clock, then one aligned table per group, numbers on the right.
 */
export function formatMetricsReport(input: MetricsReportInput): string {
  const { current, colors } = input
  const at = Number.isFinite(current.ts_unix_ms)
    ? new Date(current.ts_unix_ms ?? 0).toISOString()
    : 'unknown time'
  const heading = colors.bold(`metrics of ${input.url} at ${at}`)

  const grouped = groupFields(current)
  const widths = sharedWidths(grouped, current)
  const tables = grouped.map(({ title, names }) =>
    formatGroup(title, names, input, widths),
  )
  return `${heading}\n\n${tables.join('\n\n')}\n`
}

function groupFields(
  document: MetricsBody,
): { title: string; names: string[] }[] {
  const names = Object.keys(document).filter((name) => name !== 'ts_unix_ms')
  const taken = new Set<string>()
  const grouped = groups.map(({ title, prefixes }) => {
    const members = names.filter(
      (name) =>
        !taken.has(name) && prefixes.some((prefix) => name.startsWith(prefix)),
    )
    members.forEach((name) => taken.add(name))
    return { title, names: members }
  })
  const other = names.filter((name) => !taken.has(name))
  return [...grouped, { title: 'other', names: other }].filter(
    (group) => group.names.length > 0,
  )
}

// Every group's table gets the widest name and value of all groups, so
// that the numbers of the whole report line up in one column.
function sharedWidths(
  grouped: readonly { title: string; names: string[] }[],
  document: MetricsBody,
): number[] {
  const names = grouped.flatMap((group) => [group.title, ...group.names])
  const values = grouped.flatMap((group) =>
    group.names.map((name) => String(document[name])),
  )
  return [
    Math.max(...names.map((name) => name.length)),
    Math.max('VALUE'.length, ...values.map((value) => value.length)),
  ]
}

function formatGroup(
  title: string,
  names: readonly string[],
  input: MetricsReportInput,
  minWidths: readonly number[],
): string {
  const { colors, previous } = input
  const columns: TableColumn[] = [
    { header: title.toUpperCase() },
    { header: 'VALUE', align: 'right' },
  ]
  if (previous !== undefined) {
    columns.push({ header: 'PER SEC', align: 'right', style: colors.cyan })
  }
  const rows = names.map((name) => {
    const row = [name, String(input.current[name])]
    if (previous !== undefined) row.push(ratePerSecond(name, input, previous))
    return row
  })
  return formatTable(columns, rows, { headingStyle: colors.bold, minWidths })
}

function ratePerSecond(
  name: string,
  input: MetricsReportInput,
  previous: MetricsBody,
): string {
  const now = input.current[name]
  const before = previous[name]
  const seconds =
    ((input.current.ts_unix_ms ?? 0) - (previous.ts_unix_ms ?? 0)) / 1000
  if (gauges.has(name) || now === undefined || before === undefined) return ''
  if (!(seconds > 0)) return ''
  const rate = (now - before) / seconds
  return rate === 0 ? '0' : rate.toFixed(1)
}
