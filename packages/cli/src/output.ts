import picocolors from 'picocolors'

/** The colour functions of picocolors; each returns its text unchanged when colour is off. */
export type Colors = ReturnType<typeof picocolors.createColors>

/**
 * Where the CLI writes. The bin uses the process streams; embedders and
 * tests can pass their own to capture what a command prints.
 */
export interface CliOutput {
  /** Writes text, as given, to standard output. */
  out(text: string): void
  /** Writes text, as given, to standard error. */
  err(text: string): void
  /**
   * The width of standard output in terminal columns, when it is a
   * terminal. Tables whose last column can be cut (such as a dead letter's
   * last error) are cut to fit it; without it they fit the `COLUMNS`
   * environment variable, else 80 columns.
   */
  readonly columns?: number | undefined
  /** The width of standard error in columns, when it is a terminal. */
  readonly errColumns?: number | undefined
  /**
   * True when standard output is a terminal: output may then be coloured
   * and `metrics --watch` redraws in place.
   * @default false
   */
  readonly outIsTerminal?: boolean | undefined
  /**
   * True when standard error is a terminal: errors may then be coloured
   * and `load` draws a progress bar there instead of periodic lines.
   * @default false
   */
  readonly errIsTerminal?: boolean | undefined
}

/** The process's own standard output and standard error. */
export const processOutput: CliOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  get columns() {
    return process.stdout.isTTY ? process.stdout.columns : undefined
  },
  get errColumns() {
    return process.stderr.isTTY ? process.stderr.columns : undefined
  },
  get outIsTerminal() {
    return process.stdout.isTTY === true
  },
  get errIsTerminal() {
    return process.stderr.isTTY === true
  },
}

// What most terminals open with, when nothing says otherwise.
const defaultWidth = 80

/** The width, in terminal columns, to fit tables to (see `columns`). */
export function outputWidth(output: CliOutput): number {
  if (output.columns !== undefined && output.columns > 0) return output.columns

  const fromEnvironment = Number(process.env.COLUMNS)
  return Number.isInteger(fromEnvironment) && fromEnvironment > 0
    ? fromEnvironment
    : defaultWidth
}

/**
 * Whether to colour text written to a stream: only a terminal gets colour,
 * and never when `NO_COLOR` is set to anything but the empty string
 * (https://no-color.org) or the terminal is `TERM=dumb`.
 */
export function colorEnabled(
  isTerminal: boolean | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  if (isTerminal !== true) return false
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  return env.TERM !== 'dumb'
}

/** The colours for standard output (plain text when it gets none). */
export function outColors(output: CliOutput): Colors {
  return picocolors.createColors(colorEnabled(output.outIsTerminal))
}

/** The colours for standard error (plain text when it gets none). */
export function errColors(output: CliOutput): Colors {
  return picocolors.createColors(colorEnabled(output.errIsTerminal))
}
