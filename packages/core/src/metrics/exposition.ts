/** The metric types Parley exposes. */
export type MetricType = 'counter' | 'gauge' | 'summary'

/** One sample: a full series name, its labels and its value. */
export interface MetricSample {
  /** The sample's name, e.g. `parley_dispatch_attempts_total`. */
  readonly name: string
  /** Label values by label name, in the order they are written. */
  readonly labels: Readonly<Record<string, string>>
  /** The sample's value. */
  readonly value: number
}

/** A metric family: the samples that share one `# HELP` and `# TYPE`. */
export interface MetricFamily {
  /**
   * The family's name as `# TYPE` names it: a counter's name ends in
   * `_total`, a summary's samples add `_sum` and `_count` to it.
   */
  readonly name: string
  /** What `# TYPE` says it is. */
  readonly type: MetricType
  /** The text of its `# HELP` line. */
  readonly help: string
  /** Its samples, in the order they are written. */
  readonly samples: readonly MetricSample[]
}

/** The media type of {@link formatPrometheusText}'s output. */
export const PROMETHEUS_TEXT_CONTENT_TYPE =
  'text/plain; version=0.0.4; charset=utf-8'

/**
 * Writes metric families in the Prometheus text exposition format, version
 * 0.0.4: per family a `# HELP` line, a `# TYPE` line, then its samples,
 * each family's samples together; a newline ends every line.
 *
 * @example
 * formatPrometheusText(await parley.metrics.collect())
 */
export function formatPrometheusText(
  families: readonly MetricFamily[],
): string {
  const lines: string[] = []
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    for (const sample of family.samples) lines.push(sampleLine(sample))
  }
  return lines.map((line) => `${line}\n`).join('')
}

function sampleLine(sample: MetricSample): string {
  const labels = Object.entries(sample.labels)
  const labelText =
    labels.length === 0
      ? ''
      : `{${labels.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')}}`
  return `${sample.name}${labelText} ${formatValue(sample.value)}`
}

// The format's rules: in HELP text a backslash and a line feed are escaped;
// in label values the double quote is escaped too.
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function escapeLabel(value: string): string {
  return escapeHelp(value).replace(/"/g, '\\"')
}

// Go's ParseFloat reads JavaScript's number syntax, including exponents;
// only the special values are spelled differently.
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return '+Inf'
  if (value === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(value)
}
