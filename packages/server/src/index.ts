/**
 * Parley's HTTP server: a minimal `node:http` front for `@parley/core`,
 * with its configuration, logging and graceful shutdown.
 *
 * @packageDocumentation
 */
export {
  ConfigError,
  type LogLevel,
  loadConfig,
  type ServerConfig,
  type StorageConfig,
} from './config.js'
export { createApp, type AppOptions, type RequestListener } from './http/app.js'
export { STATUS_OF, type ErrorCode, HttpError } from './http/http-error.js'
export { createJsonLogger, type LogSink } from './logger.js'
export { runServer } from './main.js'
export { type RunningServer, type StartOptions, startServer } from './server.js'
