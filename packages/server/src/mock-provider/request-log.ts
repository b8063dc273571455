import type { IncomingHttpHeaders } from 'node:http'
import type { MockFamily } from './behaviour.js'

/** What the mock server did with a call. */
export type MockOutcome =
  | 'sent'
  | 'forced'
  | 'timeout'
  | 'error'
  | 'rate_limit'
  | 'unauthorized'
  | 'invalid'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_large'

/** One request the mock provider server received (control calls aside). */
export interface RecordedRequest {
  /** 1 for the first request since the start or the last reset, 2, … */
  readonly seq: number
  /** When it arrived, ISO-8601 UTC. */
  readonly receivedAt: string
  /** The HTTP method. */
  readonly method: string
  /** The request target: path and query. */
  readonly path: string
  /** The headers, names in lower case. */
  readonly headers: IncomingHttpHeaders
  /** The raw body, decoded as UTF-8. */
  readonly body: string
  /** A form-encoded body, each field with all its values in order. */
  readonly form: Readonly<Record<string, readonly string[]>> | null
  /** A JSON body, parsed; `null` when there was none or it was invalid. */
  readonly json: unknown
  /** The API it was sent to: `sms` (Twilio) or `email` (SendGrid). */
  readonly family: MockFamily | null
  /** `X-Parley-Message-Id`, or a counter's `anonymous-<n>`. */
  readonly messageId: string | null
  /** `X-Parley-Attempt`, or 1 for anonymous calls. */
  readonly attempt: number | null
  /** What the server did with it. */
  readonly outcome: MockOutcome
  /** The status it answered; null when it answered nothing. */
  readonly status: number | null
}

/** The recorded requests, as the control API shows them. */
export interface RequestLogSnapshot {
  /** The requests kept, oldest first. */
  readonly requests: readonly RecordedRequest[]
  /**
   * Calls that repeated a (family, message id, attempt) already seen: a
   * retry that reused an attempt number, or the same call sent twice.
   */
  readonly duplicates: number
  /** Older requests dropped to keep at most the configured number. */
  readonly dropped: number
}

/**
 * Keeps the last `capacity` requests and counts repeated (family, message
 * id, attempt) triples among the calls that carried Parley's headers.
 */
export class RequestLog {
  private entries: RecordedRequest[] = []
  private readonly seen = new Set<string>()
  private duplicates = 0
  private dropped = 0
  private seq = 0

  constructor(private readonly capacity: number) {}

  /** Records a request; `seq` is assigned here. */
  record(entry: Omit<RecordedRequest, 'seq'>, identified: boolean): void {
    this.seq += 1
    this.entries.push(Object.freeze({ seq: this.seq, ...entry }))
    if (this.entries.length > this.capacity) {
      this.entries.shift()
      this.dropped += 1
    }
    if (identified) this.countRepeat(entry)
  }

  snapshot(): RequestLogSnapshot {
    return {
      requests: [...this.entries],
      duplicates: this.duplicates,
      dropped: this.dropped,
    }
  }

  clear(): void {
    this.entries = []
    this.seen.clear()
    this.duplicates = 0
    this.dropped = 0
    this.seq = 0
  }

  private countRepeat(entry: Omit<RecordedRequest, 'seq'>): void {
    const key = `${entry.family}\n${entry.messageId}\n${entry.attempt}`
    if (this.seen.has(key)) this.duplicates += 1
    else this.seen.add(key)
  }
}
