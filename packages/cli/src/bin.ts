import { run } from './program.js'

// A reader that goes away (`parley metrics --watch | head -3`) is a normal
// end: exit quietly with 0. Any other write error (a full disk) ends the
// command with one line instead of a stack trace.
function onWriteError(stream: 'stdout' | 'stderr') {
  return (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0)
    if (stream === 'stdout') {
      process.stderr.write(
        `error: cannot write to standard output: ${error.code ?? error.message}\n`,
      )
    }
    process.exit(1)
  }
}

process.stdout.on('error', onWriteError('stdout'))
process.stderr.on('error', onWriteError('stderr'))

process.exitCode = await run(process.argv)
