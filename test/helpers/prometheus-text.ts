/**
 * A strict reader of the Prometheus text exposition format, version
 * 0.0.4, written from the format's rules: it throws on the first line that
 * breaks one, and returns every sample. Tests use it beside a published
 * parser, which is lenient: this one is the grammar check.
 */

/** One sample line, read. */
export interface ExposedSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** One family: its HELP, TYPE and samples. */
export interface ExposedFamily {
  readonly name: string
  readonly type: string
  readonly help: string
  readonly samples: ExposedSample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'summary', 'histogram', 'untyped'])
// Go's strconv.ParseFloat syntax, decimal only, as the format allows.
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/

/** Reads and checks a whole exposition; throws naming the line at fault. */
export function readExposition(text: string): Map<string, ExposedFamily> {
  if (text !== '' && !text.endsWith('\n')) {
    throw new Error('the last line must end with a line feed')
  }
  const reader = new ExpositionReader()
  const lines = text.split('\n').slice(0, -1)
  for (const [index, line] of lines.entries()) {
    try {
      reader.line(line)
    } catch (error) {
      throw new Error(`line ${index + 1} (${line}): ${String(error)}`)
    }
  }
  return reader.families
}

class ExpositionReader {
  readonly families = new Map<string, ExposedFamily>()
  private current: ExposedFamily | undefined
  private readonly closed = new Set<string>()
  private readonly seen = new Set<string>()

  line(line: string): void {
    if (line.startsWith('#')) this.comment(line)
    else if (line.trim() === '') throw new Error('empty line')
    else this.sample(line)
  }

  private comment(line: string): void {
    const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
    if (!match) return // any other comment is allowed and ignored
    const [, keyword, name = '', rest = ''] = match
    if (!METRIC_NAME.test(name)) throw new Error(`bad metric name ${name}`)
    const family = this.enter(name)
    if (keyword === 'HELP') {
      if (family.help !== '') throw new Error('a second HELP')
      family.help = unescape(rest, false)
      return
    }
    if (!TYPES.has(rest)) throw new Error(`unknown type ${rest}`)
    if (family.type !== 'untyped' || family.samples.length > 0) {
      throw new Error('TYPE must come once, before the samples')
    }
    family.type = rest
  }

  private sample(line: string): void {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(
      line,
    )
    if (!match) throw new Error('not a sample line')
    const [, name = '', labelText, valueText = ''] = match
    const family = this.familyOf(name)
    const labels = labelText ? readLabels(labelText.slice(1, -1)) : {}
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (this.seen.has(key)) throw new Error('a repeated series')
    this.seen.add(key)
    family.samples.push({ name, labels, value: readValue(valueText) })
  }

  // A sample belongs to the family being written when the name matches it
  // (a summary's _sum and _count included); otherwise it opens its own.
  private familyOf(name: string): ExposedFamily {
    const current = this.current
    if (current && belongsTo(name, current)) return current
    return this.enter(name)
  }

  private enter(name: string): ExposedFamily & { help: string; type: string } {
    const current = this.current as
      (ExposedFamily & { help: string; type: string }) | undefined
    if (current?.name === name) return current
    if (this.closed.has(name) || this.families.has(name)) {
      throw new Error(`the lines of ${name} are not together`)
    }
    if (current) this.closed.add(current.name)
    const family = { name, type: 'untyped', help: '', samples: [] }
    this.families.set(name, family)
    this.current = family
    return family
  }
}

function belongsTo(name: string, family: ExposedFamily): boolean {
  if (name === family.name) return true
  if (family.type !== 'summary' && family.type !== 'histogram') return false
  const suffixes = [
    '_sum',
    '_count',
    ...(family.type === 'histogram' ? ['_bucket'] : []),
  ]
  return suffixes.some((suffix) => name === family.name + suffix)
}

function readLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  const pattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)/y
  let position = 0
  while (position < text.length) {
    pattern.lastIndex = position
    const match = pattern.exec(text)
    if (!match) throw new Error(`bad label at ${text.slice(position)}`)
    const [whole, name = '', value = ''] = match
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new Error(`bad label name ${name}`)
    }
    if (name in labels) throw new Error(`label ${name} twice`)
    labels[name] = unescape(value, true)
    position += whole.length
  }
  return labels
}

// HELP escapes backslash and line feed; label values the double quote too.
function unescape(text: string, quotes: boolean): string {
  return text.replace(/\\(.)/g, (_, char: string) => {
    if (char === '\\') return '\\'
    if (char === 'n') return '\n'
    if (char === '"' && quotes) return '"'
    throw new Error(`bad escape \\${char}`)
  })
}

function readValue(text: string): number {
  if (text === 'NaN') return Number.NaN
  if (text === '+Inf') return Number.POSITIVE_INFINITY
  if (text === '-Inf') return Number.NEGATIVE_INFINITY
  if (!FLOAT.test(text)) throw new Error(`bad value ${text}`)
  return Number(text)
}
