import type { ParleyDatabase } from '../store/schema.js'
import { errorMessage, type Logger } from '../util/logger.js'

/** The queues whose idle workers other instances can wake. */
export type WakeQueue = 'dispatch' | 'inbound'

/** The notification channel of each queue. */
export const WAKE_CHANNELS: Readonly<Record<WakeQueue, string>> = {
  dispatch: 'parley_dispatch',
  inbound: 'parley_inbound',
}

const QUEUES = Object.keys(WAKE_CHANNELS) as WakeQueue[]

/** What {@link WakeSignals} needs. */
export interface WakeSignalsOptions {
  readonly db: ParleyDatabase
  /** Wakes this instance's worker of each queue. */
  readonly wake: Readonly<Record<WakeQueue, () => void>>
  readonly logger: Logger
}

/**
 * Carries "new work" between the Parley instances that share a database:
 * after a commit that queued work, `announce` sends one notification on
 * the queue's channel, and a notification from another instance wakes this
 * instance's idle worker of that queue at once instead of at its next
 * poll. Within one instance the workers are woken directly; polling stays
 * the fallback for a lost notification, a dropped listener, and databases
 * that have no notifications (SQLite), where this does nothing.
 *
 * Announcements coalesce: while one is on its way, further ones for the
 * same queue become a single follow-up, sent after it. The payload names
 * the schema and the sender, so that an instance ignores its own
 * announcements and those of another deployment in the same database.
 */
export class WakeSignals {
  private readonly origin = crypto.randomUUID()
  private readonly scope: string
  private readonly senders = new Map<WakeQueue, Announcer>()
  private unsubscribes: Array<() => Promise<void>> = []
  private closed = false

  constructor(private readonly options: WakeSignalsOptions) {
    this.scope = options.db.schema ?? ''
  }

  /** Starts waking this instance's workers on other instances' news. */
  async listen(): Promise<void> {
    const subscribe = this.options.db.subscribe?.bind(this.options.db)
    if (!subscribe || this.unsubscribes.length > 0) return
    this.unsubscribes = await Promise.all(
      QUEUES.map((queue) =>
        subscribe(WAKE_CHANNELS[queue], (payload) =>
          this.received(queue, payload),
        ),
      ),
    )
  }

  /** Tells the other instances that `queue` has new work, committed. */
  announce(queue: WakeQueue): void {
    const notify = this.options.db.notify?.bind(this.options.db)
    if (!notify || this.closed) return
    let sender = this.senders.get(queue)
    if (!sender) {
      const payload = JSON.stringify({ schema: this.scope, from: this.origin })
      sender = new Announcer(
        () => notify(WAKE_CHANNELS[queue], payload),
        (error) =>
          this.options.logger.warn('queue.announce_failed', {
            queue,
            error: errorMessage(error),
          }),
      )
      this.senders.set(queue, sender)
    }
    sender.announce()
  }

  /** Sends what is pending, then stops listening. */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all([...this.senders.values()].map((s) => s.drained()))
    const unsubscribes = this.unsubscribes.splice(0)
    await Promise.all(unsubscribes.map((unsubscribe) => unsubscribe()))
  }

  private received(queue: WakeQueue, payload: string | undefined): void {
    if (this.isOwnOrForeign(payload)) return
    this.options.wake[queue]()
  }

  // A notification this instance sent, or one about another schema's
  // tables. Anything else wakes the worker, including a bare `NOTIFY
  // parley_dispatch` typed by an operator and the undefined payload of a
  // listener that reconnected.
  private isOwnOrForeign(payload: string | undefined): boolean {
    if (!payload) return false
    try {
      const { schema, from } = JSON.parse(payload) as Record<string, unknown>
      return from === this.origin || schema !== this.scope
    } catch {
      return false
    }
  }
}

/**
 * Sends one notification at a time; calls made while one is on its way
 * are folded into one more, sent after it (work committed after a
 * notification left may be missed by the claim that notification causes).
 */
class Announcer {
  private sending: Promise<void> | undefined
  private again = false

  constructor(
    private readonly send: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  announce(): void {
    if (this.sending) {
      this.again = true
      return
    }
    this.sending = this.sendAll().finally(() => (this.sending = undefined))
  }

  /** Resolves once nothing is being sent. */
  async drained(): Promise<void> {
    while (this.sending) await this.sending
  }

  private async sendAll(): Promise<void> {
    do {
      this.again = false
      await this.send().catch(this.onError)
    } while (this.again)
  }
}
