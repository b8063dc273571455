/**
 * Where the CLI writes. The bin uses the process streams; embedders and
 * tests can pass their own to capture what a command prints.
 */
export interface CliOutput {
  /** Writes text, as given, to standard output. */
  out(text: string): void
  /** Writes text, as given, to standard error. */
  err(text: string): void
}

/** The process's own standard output and standard error. */
export const processOutput: CliOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
}
