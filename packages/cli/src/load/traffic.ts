import { randomBytes, randomInt } from 'node:crypto'

import { InvalidArgumentError } from 'commander'

/**
 * One kind of request `parley load` makes: a send (`sms`, `mms`, `email`)
 * or a provider's inbound webhook (`inbound-*`).
 */
export type TrafficKind =
  'sms' | 'mms' | 'email' | 'inbound-sms' | 'inbound-mms' | 'inbound-email'

/** Every kind, in the order help lists them. */
export const trafficKinds: readonly TrafficKind[] = [
  'sms',
  'mms',
  'email',
  'inbound-sms',
  'inbound-mms',
  'inbound-email',
]

/** Names that stand for several kinds at once. */
export const trafficAliases: Readonly<Record<string, readonly TrafficKind[]>> =
  {
    sends: ['sms', 'email'],
    webhooks: ['inbound-sms', 'inbound-email'],
    mix: ['sms', 'email', 'inbound-sms', 'inbound-email'],
  }

/**
 * Parses `--traffic`: kinds and aliases separated by commas, such as
 * `sms,inbound-email` or `mix`. Repeats are kept: `sms,sms,email` makes two
 * SMS for each email.
 */
export function parseTraffic(value: string): TrafficKind[] {
  const names = value.split(',').map((name) => name.trim().toLowerCase())
  return names.flatMap((name) => {
    if ((trafficKinds as readonly string[]).includes(name)) {
      return [name as TrafficKind]
    }
    const alias = trafficAliases[name]
    if (alias !== undefined) return [...alias]
    throw new InvalidArgumentError(
      `unknown kind "${name}"; expected ${[...trafficKinds, ...Object.keys(trafficAliases)].join(', ')}.`,
    )
  })
}

/** What `parley load` later checks the server did with an accepted request. */
export type Expectation =
  | {
      /** A send: its message reaches a status past `queued` and `sending`. */
      readonly type: 'dispatch'
      /** Filled in from the 202 answer. */
      readonly messageId?: string
    }
  | {
      /** A webhook: its message shows up in its conversation. */
      readonly type: 'thread'
      readonly family: 'sms' | 'email'
      /** The two participants, normalized, sorted. */
      readonly participants: readonly [string, string]
      /** The message's timestamp; the conversation's last activity reaches it. */
      readonly timestamp: string
    }

/** One request of a load run, before it is sent. */
export interface LoadRequest {
  readonly kind: TrafficKind
  /** The route, relative to the server's base URL. */
  readonly path: string
  /** The family, for signing webhooks. */
  readonly family: 'sms' | 'email'
  /** The JSON body, serialized once (a signature covers these bytes). */
  readonly body: string
  readonly expectation: Expectation
}

// Senders and recipients are fictional: phone numbers in the 555 exchange,
// addresses at example.com (RFC 2606). Every request of a run has a sender
// of its own, so that the per-sender limit of a send (60 a minute by
// default) never applies twice to one sender, and a webhook's conversation
// is its own.
const firstAreaCode = 202
const areaCodes = 999 - firstAreaCode + 1
const senderSpace = areaCodes * 10_000
const ourNumber = '+12015550100'

/**
 * Makes the requests of one run. Each run picks a random id and a random
 * start in the space of sender numbers, so that two runs against one
 * server do not share conversations.
 */
export class TrafficPlan {
  readonly runId = randomBytes(4).toString('hex')
  readonly #firstSender = randomInt(senderSpace)

  constructor(
    /** The kinds, taken in turn: request `i` is `kinds[i % kinds.length]`. */
    readonly kinds: readonly TrafficKind[],
    /** The current time, as an ISO-8601 string. */
    private readonly now: () => string = () => new Date().toISOString(),
  ) {
    if (kinds.length === 0) throw new RangeError('kinds must not be empty')
  }

  /**
   * The request with index `index`, from 0. Sends and webhooks alike go
   * from an address unique to the request to one fixed address of the run.
   */
  request(index: number): LoadRequest {
    const kind = this.kinds[index % this.kinds.length] as TrafficKind
    const inbound = kind.startsWith('inbound-')
    const type = inbound ? kind.slice('inbound-'.length) : kind
    const family = type === 'email' ? 'email' : 'sms'
    const [from, to] = this.#addresses(family, index)
    const timestamp = this.now()
    const fields = { from, to, ...this.#content(type, index), timestamp }
    if (!inbound) {
      return {
        kind,
        family,
        path: `api/messages/${family}`,
        body: JSON.stringify(fields),
        expectation: { type: 'dispatch' },
      }
    }

    const idField = family === 'email' ? 'xillio_id' : 'messaging_provider_id'
    const participants = [from, to].sort() as [string, string]
    return {
      kind,
      family,
      path: `api/webhooks/${family}`,
      body: JSON.stringify({
        ...fields,
        [idField]: `load-${this.runId}-${index}`,
      }),
      expectation: { type: 'thread', family, participants, timestamp },
    }
  }

  // [the address unique to this request, the fixed address on our side]
  #addresses(family: 'sms' | 'email', index: number): [string, string] {
    if (family === 'email') {
      return [
        `load-${this.runId}-${index}@example.com`,
        `inbox-${this.runId}@example.com`,
      ]
    }
    const slot = (this.#firstSender + index) % senderSpace
    const areaCode = firstAreaCode + Math.floor(slot / 10_000)
    const line = String(slot % 10_000).padStart(4, '0')
    return [`+1${areaCode}555${line}`, ourNumber]
  }

  #content(type: string, index: number): Record<string, unknown> {
    const text = `parley load ${this.runId} #${index}`
    if (type === 'email') {
      return { subject: text, body: `<p>${text}</p>`, attachments: [] }
    }
    const attachments =
      type === 'mms' ? [`https://example.com/load/${index}.png`] : []
    return { type, body: text, attachments }
  }
}
