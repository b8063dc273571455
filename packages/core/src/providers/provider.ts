import type { Channel, ChannelFamily } from '../messages/types.js'

/** A message as a provider receives it. */
export interface OutboundMessage {
  /** Parley's id for the message. */
  readonly id: string
  /** `sms`, `mms` or `email`; one of the provider's family. */
  readonly channel: Channel
  /** Sender: E.164 or short code for phones, the address as given for email. */
  readonly from: string
  /** Recipient, in the same forms as `from`. */
  readonly to: string
  /** The email subject, or `null` (SMS, MMS, or none given). */
  readonly subject: string | null
  /** The body as the client sent it (HTML allowed for email). */
  readonly body: string
  /** http(s) URLs of its media or attachments, possibly none. */
  readonly attachments: readonly string[]
  /** The client's timestamp, UTC ISO-8601. */
  readonly timestamp: string
}

/** What a provider knows about the call it is asked to make. */
export interface SendContext {
  /** 1 for the first call for this message, 2 for the first retry, … */
  readonly attempt: number
  /** Aborted when the call has run out of time; stop work then. */
  readonly signal: AbortSignal
}

/** How a provider call ended, as a kind. */
export type ProviderOutcomeKind =
  'sent' | 'rate_limited' | 'transient' | 'permanent'

/**
 * How a provider call ended:
 * - `sent`: accepted, with the provider's id for the message;
 * - `rate_limited`: a 429; `retryAfterMs` when the provider said when;
 * - `transient`: a 5xx, timeout or connection error, worth retrying;
 * - `permanent`: rejected (another 4xx); retrying cannot help.
 */
export type ProviderOutcome =
  | { readonly kind: 'sent'; readonly providerMessageId: string }
  | {
      readonly kind: 'rate_limited'
      readonly retryAfterMs?: number
      readonly error: string
    }
  | { readonly kind: 'transient'; readonly error: string }
  | { readonly kind: 'permanent'; readonly error: string }

/**
 * A named provider that delivers one channel family. A call that throws is
 * treated as a transient failure; one that outlives its signal as a timeout.
 */
export interface Provider {
  /** Unique name, e.g. `twilio-main` or `mock-sms`. */
  readonly name: string
  /** The family it serves. */
  readonly family: ChannelFamily
  /**
   * Time its calls may need beyond the configured provider timeout, in ms
   * (the SendGrid adapter fetches attachments inside the call). The lease
   * must cover both.
   * @default 0
   */
  readonly extraTimeoutMs?: number
  /** Makes one delivery attempt. */
  send(message: OutboundMessage, context: SendContext): Promise<ProviderOutcome>
}

/**
 * The outcome a provider resolved with, checked: anything that is not a
 * well-formed {@link ProviderOutcome} (no `kind`, an unknown kind, `sent`
 * without an id, a retry delay that is not a non-negative number) becomes
 * a transient failure that says what was wrong. Internal.
 */
export function checkedOutcome(value: unknown): ProviderOutcome {
  const outcome = value as Partial<Record<string, unknown>> | null | undefined
  const said = outcome?.error
  const error =
    typeof said === 'string'
      ? said
      : said === undefined || said === null
        ? 'the provider gave no reason'
        : String(said)
  switch (outcome?.kind) {
    case 'sent':
      return typeof outcome.providerMessageId === 'string' &&
        outcome.providerMessageId !== ''
        ? { kind: 'sent', providerMessageId: outcome.providerMessageId }
        : invalid('sent without a providerMessageId')
    case 'rate_limited': {
      const after = outcome.retryAfterMs
      if (after === undefined) return { kind: 'rate_limited', error }
      return typeof after === 'number' && Number.isFinite(after) && after >= 0
        ? { kind: 'rate_limited', retryAfterMs: after, error }
        : invalid(`rate_limited with retryAfterMs ${String(after)}`)
    }
    case 'transient':
    case 'permanent':
      return { kind: outcome.kind, error }
    default:
      return invalid(`kind ${JSON.stringify(outcome?.kind) ?? 'undefined'}`)
  }
}

function invalid(what: string): ProviderOutcome {
  return {
    kind: 'transient',
    error: `the provider returned an invalid outcome (${what})`,
  }
}
