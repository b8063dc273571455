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
export {
  type MockProviderServer,
  startMockProviderServer,
} from './mock-provider/mock-provider-server.js'
export {
  MOCK_PROVIDER_CREDENTIALS,
  type MockProviderServerOptions,
} from './mock-provider/server-options.js'
export type {
  MockBehaviour,
  MockBehaviourPatch,
  MockFamily,
  MockProviderConfig,
} from './mock-provider/behaviour.js'
export type { MockCredentials } from './mock-provider/provider-apis.js'
export type {
  MockOutcome,
  RecordedRequest,
  RequestLogSnapshot,
} from './mock-provider/request-log.js'
export {
  generateSendGridKeyPair,
  SENDGRID_SIGNATURE_HEADERS,
  type SendGridKeyPair,
  signSendGridRequest,
  type SignSendGridOptions,
  type SignStandardWebhookOptions,
  signStandardWebhook,
  STANDARD_WEBHOOK_HEADERS,
  type SignTwilioOptions,
  signTwilioRequest,
  TWILIO_SIGNATURE_HEADER,
  twilioBodyHash,
  type TwilioParams,
} from './http/security/signatures.js'
