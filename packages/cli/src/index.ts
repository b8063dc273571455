/**
 * `@parley/cli`: the `parley` command as a library, for embedding it or
 * adding commands to it.
 *
 * @packageDocumentation
 */
export { createProgram, run, type ExitCode } from './program.js'
export type { CliOutput } from './output.js'
