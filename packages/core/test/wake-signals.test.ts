/**
 * WakeSignals over a fake database with notifications: who wakes whom,
 * how announcements coalesce, and that it stays silent on a database
 * without notifications (SQLite).
 */
import { describe, expect, it } from 'vitest'
import { WAKE_CHANNELS, WakeSignals } from '../src/queue/wake-signals.js'
import type {
  NotificationHandler,
  ParleyDatabase,
} from '../src/store/schema.js'
import { silentLogger } from '../src/util/logger.js'
import { deferred, memoryDb } from './support.js'

/** A database whose notifications the test sees and sends by hand. */
function fakeDb(schema?: string) {
  const sent: Array<{ channel: string; payload: string }> = []
  const handlers = new Map<string, NotificationHandler>()
  let release = deferred<void>()
  let holdSends = false
  const db = {
    dialect: 'postgres',
    schema,
    notify: async (channel: string, payload: string) => {
      sent.push({ channel, payload })
      if (holdSends) await release.promise
    },
    subscribe: async (channel: string, onNotify: NotificationHandler) => {
      handlers.set(channel, onNotify)
      return async () => {
        handlers.delete(channel)
      }
    },
  } as unknown as ParleyDatabase
  return {
    db,
    sent,
    handlers,
    /** Makes sends wait until `releaseSends` is called. */
    holdSends() {
      holdSends = true
      release = deferred<void>()
    },
    releaseSends() {
      holdSends = false
      release.resolve()
    },
    deliver(channel: string, payload: string | undefined) {
      handlers.get(channel)?.(payload)
    },
  }
}

function signals(db: ParleyDatabase) {
  const woken: string[] = []
  const wake = {
    dispatch: () => woken.push('dispatch'),
    inbound: () => woken.push('inbound'),
  }
  return { woken, signals: new WakeSignals({ db, wake, logger: silentLogger }) }
}

describe('WakeSignals', () => {
  it("wakes this instance's worker of the queue another instance announced", async () => {
    const fake = fakeDb('tenant_a')
    const other = signals(fake.db)
    const self = signals(fake.db)
    await self.signals.listen()

    other.signals.announce('inbound')
    await other.signals.close()
    const [announcement] = fake.sent
    fake.deliver(announcement!.channel, announcement!.payload)

    expect(announcement?.channel).toBe(WAKE_CHANNELS.inbound)
    expect(self.woken).toEqual(['inbound'])
  })

  it('ignores its own announcements and those about another schema', async () => {
    const fake = fakeDb('tenant_a')
    const self = signals(fake.db)
    await self.signals.listen()

    self.signals.announce('dispatch')
    const own = fake.sent[0]!.payload
    const foreign = JSON.stringify({ schema: 'tenant_b', from: 'someone' })
    fake.deliver(WAKE_CHANNELS.dispatch, own)
    fake.deliver(WAKE_CHANNELS.dispatch, foreign)
    await self.signals.close()

    expect(self.woken).toEqual([])
  })

  it('wakes on a bare notification and after the listener reconnected', async () => {
    const fake = fakeDb()
    const self = signals(fake.db)
    await self.signals.listen()

    fake.deliver(WAKE_CHANNELS.dispatch, '')
    fake.deliver(WAKE_CHANNELS.inbound, undefined)
    fake.deliver(WAKE_CHANNELS.inbound, 'not json')

    expect(self.woken).toEqual(['dispatch', 'inbound', 'inbound'])
  })

  it('folds announcements made while one is on its way into one more', async () => {
    const fake = fakeDb()
    const self = signals(fake.db)
    fake.holdSends()

    for (let i = 0; i < 5; i += 1) self.signals.announce('dispatch')
    self.signals.announce('inbound')
    expect(fake.sent.map((s) => s.channel)).toEqual([
      WAKE_CHANNELS.dispatch,
      WAKE_CHANNELS.inbound,
    ])
    fake.releaseSends()
    await self.signals.close()

    expect(fake.sent.map((s) => s.channel)).toEqual([
      WAKE_CHANNELS.dispatch,
      WAKE_CHANNELS.inbound,
      WAKE_CHANNELS.dispatch,
    ])
  })

  it('stops listening and announcing once closed', async () => {
    const fake = fakeDb()
    const self = signals(fake.db)
    await self.signals.listen()
    expect(fake.handlers.size).toBe(2)

    await self.signals.close()
    self.signals.announce('dispatch')

    expect(fake.handlers.size).toBe(0)
    expect(fake.sent).toEqual([])
  })

  it('does nothing on a database without notifications', async () => {
    const db = await memoryDb()
    const self = signals(db)

    await self.signals.listen()
    self.signals.announce('dispatch')
    await self.signals.close()
    await db.close()

    expect(self.woken).toEqual([])
  })
})
