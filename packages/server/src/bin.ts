import { runServer } from './main.js'

runServer().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  process.stderr.write(`parley: failed to start: ${message}\n`)
  process.exit(1)
})
