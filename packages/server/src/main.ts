import { ConfigError, loadConfig } from './config.js'
import { createJsonLogger } from './logger.js'
import { type RunningServer, startServer } from './server.js'

/**
 * Runs the server as a process: reads the configuration from `env`, starts
 * listening, and on SIGTERM or SIGINT shuts down gracefully and exits with
 * the shutdown's code. A bad configuration exits 1 with a message naming
 * the variable.
 */
export async function runServer(
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningServer> {
  let config
  try {
    config = loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`parley: configuration error: ${error.message}\n`)
      process.exit(1)
    }
    throw error
  }
  const logger = createJsonLogger(config.logLevel)
  const server = await startServer({ config, logger })
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info('server.signal', { signal })
    server.shutdown().then(
      (code) => process.exit(code),
      (error: unknown) => {
        logger.error('server.shutdown_failed', { error: String(error) })
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  return server
}
