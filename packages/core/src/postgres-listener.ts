import pg from 'pg'
import type { NotificationHandler } from './store/schema.js'
import { errorMessage, type Logger } from './util/logger.js'

/** Options of a {@link PostgresListener}. */
export interface PostgresListenerOptions {
  /** Opens the dedicated session (not started yet). */
  readonly connect: () => pg.Client
  readonly logger: Logger
  /** First reconnection delay ceiling, in ms. @default 100 */
  readonly retryBaseMs?: number
  /** Largest reconnection delay, in ms. @default 10000 */
  readonly retryMaxMs?: number
  /** Source of randomness in [0, 1) for jitter. @default Math.random */
  readonly random?: () => number
}

/**
 * One dedicated Postgres session that LISTENs on every channel someone
 * subscribed to, shared by all subscriptions of a pool (a pooled
 * connection cannot listen: it goes back to the pool between queries).
 *
 * The session is opened with the first subscription and closed with the
 * last. When it drops it is reopened with exponential backoff and full
 * jitter; once it listens again, every handler is called with `undefined`,
 * because notifications sent meanwhile were lost. A handler that throws is
 * logged and never stops the others.
 */
export class PostgresListener {
  private readonly handlers = new Map<string, Set<NotificationHandler>>()
  private session: Session | undefined
  private opening: Promise<void> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private failures = 0
  private closed = false

  constructor(private readonly options: PostgresListenerOptions) {}

  /** See `ParleyDatabase.subscribe`. */
  async subscribe(
    channel: string,
    onNotify: NotificationHandler,
  ): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('the database is closed')
    checkChannel(channel)
    const handlers = this.handlers.get(channel) ?? new Set()
    handlers.add(onNotify)
    this.handlers.set(channel, handlers)

    await this.ensureListening(channel)
    return () => this.unsubscribe(channel, onNotify)
  }

  /** Stops listening for good and closes the session. */
  async close(): Promise<void> {
    this.closed = true
    this.handlers.clear()
    clearTimeout(this.retryTimer)
    await this.opening?.catch(() => undefined)
    await this.endSession()
  }

  private async unsubscribe(
    channel: string,
    onNotify: NotificationHandler,
  ): Promise<void> {
    const handlers = this.handlers.get(channel)
    if (!handlers?.delete(onNotify) || handlers.size > 0) return

    this.handlers.delete(channel)
    if (this.handlers.size === 0) {
      clearTimeout(this.retryTimer)
      return this.endSession()
    }
    const session = this.session
    if (session?.channels.delete(channel)) {
      await session.client
        .query(`unlisten ${quoteIdentifier(channel)}`)
        .catch(() => undefined)
    }
  }

  // Opens the session if there is none (nor an attempt under way), then
  // makes sure it listens on `channel`.
  private async ensureListening(channel: string): Promise<void> {
    if (!this.session && !this.opening && this.retryTimer === undefined) {
      this.opening = this.open().finally(() => (this.opening = undefined))
    }
    await this.opening
    const session = this.session
    if (session && !session.channels.has(channel)) {
      await this.listenOn(session, channel).catch((error: unknown) =>
        this.lost(session, error),
      )
    }
  }

  private async open(): Promise<void> {
    const client = this.options.connect()
    const session: Session = { client, channels: new Set() }
    client.on('notification', (message) =>
      this.deliver(message.channel, message.payload ?? ''),
    )
    client.on('error', (error) => this.lost(session, error))
    client.on('end', () => this.lost(session, new Error('connection ended')))
    try {
      await client.connect()
      for (const channel of this.handlers.keys()) {
        await this.listenOn(session, channel)
      }
    } catch (error) {
      return this.lost(session, error)
    }
    this.listening(session)
  }

  private async listenOn(session: Session, channel: string): Promise<void> {
    session.channels.add(channel)
    await session.client.query(`listen ${quoteIdentifier(channel)}`)
  }

  private listening(session: Session): void {
    if (this.closed || this.handlers.size === 0) {
      session.lost = true
      void session.client.end().catch(() => undefined)
      return
    }
    const reconnected = this.failures > 0
    this.session = session
    this.failures = 0
    this.options.logger.info('postgres.listening', {
      channels: [...session.channels],
    })
    // Whatever was announced while no session listened is lost.
    if (reconnected) {
      for (const channel of this.handlers.keys()) {
        this.deliver(channel, undefined)
      }
    }
  }

  // Called for every sign of a broken session: an error, the end of the
  // connection, a failed connect or LISTEN. Only the first one counts.
  private lost(session: Session, error: unknown): void {
    if (session.lost) return
    session.lost = true
    if (this.session === session) this.session = undefined
    void session.client.end().catch(() => undefined)
    if (this.closed || this.handlers.size === 0) return

    this.failures += 1
    const delayMs = this.retryDelay()
    this.options.logger.warn('postgres.listener_lost', {
      error: errorMessage(error),
      failures: this.failures,
      retry_in_ms: delayMs,
    })
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => this.retry(), delayMs)
    this.retryTimer.unref?.()
  }

  private retry(): void {
    this.retryTimer = undefined
    if (this.closed || this.handlers.size === 0 || this.session) return
    this.opening ??= this.open().finally(() => (this.opening = undefined))
  }

  // Full jitter over an exponential ceiling, as for job retries, so that
  // many instances that lost the database at once do not return together.
  private retryDelay(): number {
    const base = this.options.retryBaseMs ?? 100
    const max = this.options.retryMaxMs ?? 10_000
    const exponent = Math.min(this.failures - 1, 30)
    const ceiling = Math.min(max, base * 2 ** exponent)
    const random = this.options.random ?? Math.random
    return Math.max(1, Math.floor(random() * ceiling))
  }

  private deliver(channel: string, payload: string | undefined): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(payload)
      } catch (error) {
        this.options.logger.error('postgres.notification_handler_failed', {
          channel,
          error: errorMessage(error),
        })
      }
    }
  }

  private async endSession(): Promise<void> {
    const session = this.session
    this.session = undefined
    if (!session) return
    session.lost = true
    await session.client.end().catch(() => undefined)
  }
}

interface Session {
  readonly client: pg.Client
  /** Channels a LISTEN was sent for on this session. */
  readonly channels: Set<string>
  /** Set once the session broke or was ended on purpose. */
  lost?: boolean
}

// Channel names are SQL identifiers; LISTEN takes no parameters.
function checkChannel(channel: string): void {
  if (/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) return
  throw new RangeError(
    `channel must be a lower-case SQL identifier, got ${channel}`,
  )
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
