/**
 * Parley's messaging core: validation and normalization, conversation
 * threading, durable queues, dispatch through providers, and metrics.
 * Storage adapters live in subpath exports, each with its own driver:
 * `@parley/core/sqlite` (better-sqlite3), `@parley/core/node-sqlite`
 * (`node:sqlite`, for Deno) and `@parley/core/postgres` (pg). Start with
 * {@link createParley}; docs/library.md walks through the rest.
 *
 * @packageDocumentation
 */
export {
  createParley,
  type IdempotencyOptions,
  type IngressControls,
  type Parley,
  type ParleyOptions,
  type ReadinessOptions,
  type ReadinessReport,
  type ReceiveOptions,
  type ReceiveResult,
  type SendOptions,
  type SendResult,
  type StopOptions,
  type TraceOptions,
} from './parley.js'
export type { ParleyConfig, ResolvedConfig } from './config.js'
export { isStorableText } from './messages/validate.js'
export { resolveConfig } from './config.js'
export {
  type FieldError,
  IdempotencyInProgressError,
  IdempotencyKeyReusedError,
  isParleyError,
  isValidationError,
  NoRouteError,
  RateLimitedError,
  NotFoundError,
  ParleyError,
  type ParleyErrorCode,
  UnavailableError,
  ValidationError,
} from './errors.js'
export type {
  Channel,
  ChannelFamily,
  Conversation,
  Direction,
  EmailSendRequest,
  EmailWebhookPayload,
  Message,
  MessageDetail,
  MessageStatus,
  Page,
  PageRequest,
  SmsSendRequest,
  SmsWebhookPayload,
} from './messages/types.js'
export {
  type DeliveryStatus,
  type DeliveryStatusUpdate,
  fromSendGridEvent,
  fromTwilioStatus,
  sendGridMessageId,
} from './messages/delivery-status.js'
export type { MetricsSnapshot } from './metrics/metrics.js'
export {
  formatPrometheusText,
  type MetricFamily,
  type MetricSample,
  type MetricType,
  PROMETHEUS_TEXT_CONTENT_TYPE,
} from './metrics/exposition.js'
export type { DeadLetter, QueueName } from './store/dead-letters.js'
export type { DeliveryReportResult } from './store/delivery.js'
export {
  type FaultRates,
  type FaultSchedule,
  NO_FAULTS,
  type ScheduledFault,
  scheduledFault,
} from './providers/fault-schedule.js'
export {
  createMockProvider,
  MockProvider,
  type MockProviderOptions,
  type MockProviderSettings,
} from './providers/mock-provider.js'
export type {
  OutboundMessage,
  Provider,
  ProviderOutcome,
  ProviderOutcomeKind,
  SendContext,
} from './providers/provider.js'
export type {
  ConversationsTable,
  DialectName,
  DispatchJobsTable,
  IdColumn,
  IdempotencyKeysTable,
  InboundEventsTable,
  MessagesTable,
  NotificationHandler,
  NullableTimestampColumn,
  ParleyDatabase,
  ParleySchema,
  PendingStatusUpdatesTable,
  QueueColumns,
  QueueState,
  RateLimitBucketsTable,
  RefColumn,
  TimestampColumn,
} from './store/schema.js'
export { WAKE_CHANNELS, type WakeQueue } from './queue/wake-signals.js'
export { migrateToLatest } from './store/migrations.js'
export { type Clock, systemClock } from './util/clock.js'
export { type LogFields, type Logger, silentLogger } from './util/logger.js'
export {
  createTwilioProvider,
  TWILIO_BASE_URL,
  type TwilioProviderOptions,
} from './providers/twilio-provider.js'
export {
  createSendGridProvider,
  SENDGRID_BASE_URL,
  type SendGridProviderOptions,
} from './providers/sendgrid-provider.js'
export type { FetchFunction } from './providers/adapter-options.js'
export {
  type ConnectLookup,
  type LookupAddress,
  publicAddressLookup,
} from './providers/attachments.js'
export {
  type Admission,
  type BreakerState,
  type BreakerStateName,
  CircuitBreaker,
  type CircuitBreakerOptions,
} from './resilience/circuit-breaker.js'
export {
  DEFAULT_RATE_LIMIT_MAX_KEYS,
  MemoryRateLimitStore,
  type MemoryRateLimitStoreOptions,
} from './resilience/memory-rate-limit-store.js'
export type {
  BucketShape,
  BucketTake,
  RateLimitStore,
} from './resilience/rate-limit-store.js'
export {
  DatabaseRateLimitStore,
  type DatabaseRateLimitStoreOptions,
} from './resilience/database-rate-limit-store.js'
export {
  type RateLimitDecision,
  RateLimiter,
  type RateLimiterOptions,
} from './resilience/rate-limiter.js'
