/**
 * The counters Parley keeps, each with the labels it is kept under. This
 * is the one source of every count: the JSON snapshot sums these series
 * (see `JSON_COUNTERS` in metrics.ts) and the Prometheus text lists them.
 */
export type CounterName =
  | 'rate_limited'
  | 'global_breaker_short_circuits'
  | 'global_breaker_transitions'
  | 'dispatch_attempts'
  | 'dispatch_success'
  | 'dispatch_rate_limited'
  | 'dispatch_error'
  | 'provider_breaker_transitions'
  | 'dispatch_short_circuited'
  | 'dispatch_dead_letters'
  | 'invalid_routing'
  | 'inbound_claimed'
  | 'inbound_processed'
  | 'inbound_errors'
  | 'inbound_dead_letters'
  | 'conversations_created'
  | 'conversations_reused'
  | 'conversation_upsert_failures'

/** The label names a counter may carry. */
export type LabelName = 'family' | 'provider' | 'scope' | 'to'

/** Label values of one series, by label name. */
export type Labels = Readonly<Partial<Record<LabelName, string>>>

/** What a counter means and which labels split it. */
export interface CounterSpec {
  /** One line for `# HELP`. */
  readonly help: string
  /** The labels every series of the counter carries, in this order. */
  readonly labels: readonly LabelName[]
}

const PROVIDER_LABELS: readonly LabelName[] = ['family', 'provider']

/** Every counter, in the order the exposition lists them. */
export const COUNTER_CATALOG: Readonly<Record<CounterName, CounterSpec>> = {
  rate_limited: {
    help: 'Requests refused with 429, by the limit that refused them (ip or sender).',
    labels: ['scope'],
  },
  global_breaker_short_circuits: {
    help: 'API requests the global breaker answered 503 without trying the backend.',
    labels: [],
  },
  global_breaker_transitions: {
    help: 'State changes of the global breaker.',
    labels: [],
  },
  dispatch_attempts: {
    help: 'Provider calls that ended, whatever the outcome.',
    labels: PROVIDER_LABELS,
  },
  dispatch_success: {
    help: 'Provider calls that ended with the message accepted.',
    labels: PROVIDER_LABELS,
  },
  dispatch_rate_limited: {
    help: 'Provider calls that ended with a 429 from the provider.',
    labels: PROVIDER_LABELS,
  },
  dispatch_error: {
    help: 'Provider calls that ended in a transient or permanent failure.',
    labels: PROVIDER_LABELS,
  },
  provider_breaker_transitions: {
    help: 'State changes of a provider breaker, by the state entered.',
    labels: ['family', 'provider', 'to'],
  },
  dispatch_short_circuited: {
    help: 'Claimed jobs put back without a call because a provider breaker refused them.',
    labels: ['family'],
  },
  dispatch_dead_letters: {
    help: 'Outbound messages failed for good, their jobs dead-lettered.',
    labels: ['family'],
  },
  invalid_routing: {
    help: 'Messages whose family had no provider.',
    labels: ['family'],
  },
  inbound_claimed: {
    help: 'Inbound events claimed by the inbound worker.',
    labels: [],
  },
  inbound_processed: {
    help: 'Inbound events threaded into their conversation.',
    labels: [],
  },
  inbound_errors: {
    help: 'Inbound events whose threading failed and will be retried.',
    labels: [],
  },
  inbound_dead_letters: {
    help: 'Inbound events whose threading failed on the last attempt.',
    labels: [],
  },
  conversations_created: {
    help: 'Messages that created their conversation row.',
    labels: [],
  },
  conversations_reused: {
    help: 'Messages that joined an existing conversation.',
    labels: [],
  },
  conversation_upsert_failures: {
    help: 'Conversation upserts that failed in storage.',
    labels: [],
  },
}

/** The counter names, in catalog order. */
export const COUNTER_NAMES = Object.keys(COUNTER_CATALOG) as CounterName[]
