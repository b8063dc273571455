import { describe, expect, it } from 'vitest'
import type { ParleyEvents } from '../src/events.js'
import { createMockProvider } from '../src/providers/mock-provider.js'
import { ProviderHealthBoard } from '../src/routing/provider-health.js'
import { ProviderRegistry } from '../src/routing/provider-registry.js'
import { TypedEmitter } from '../src/util/emitter.js'
import { silentLogger } from '../src/util/logger.js'

function board(now: { t: number }) {
  const provider = createMockProvider({ family: 'sms', seed: 1 })
  const health = new ProviderHealthBoard({
    registry: new ProviderRegistry([provider]),
    clock: { now: () => now.t },
    events: new TypedEmitter<ParleyEvents>(() => undefined),
    logger: silentLogger,
    breaker: { threshold: 1, openMs: 1000 },
  })
  return { provider, health }
}

describe('ProviderHealthBoard', () => {
  it('admits a new half-open trial once an admitted trial is released without a call', () => {
    const now = { t: 0 }
    const { provider, health } = board(now)
    health.record(provider, { kind: 'transient', error: 'down' })
    now.t = 1000

    expect(health.choose('sms').kind).toBe('call')
    expect(health.choose('sms').kind).toBe('defer')
    health.release(provider)

    expect(health.choose('sms')).toMatchObject({ kind: 'call', provider })
  })

  it('keeps deferring while a trial that was really called is still running', () => {
    const now = { t: 0 }
    const { provider, health } = board(now)
    health.record(provider, { kind: 'transient', error: 'down' })
    now.t = 1000

    expect(health.choose('sms').kind).toBe('call')
    expect(health.choose('sms')).toMatchObject({
      kind: 'defer',
      retryAt: 2000,
    })
  })
})
