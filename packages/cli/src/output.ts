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
}

/** The process's own standard output and standard error. */
export const processOutput: CliOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  get columns() {
    return process.stdout.isTTY ? process.stdout.columns : undefined
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
