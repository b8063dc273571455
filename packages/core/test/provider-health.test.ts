import { describe, expect, it } from 'vitest'
import type { ParleyEvents } from '../src/events.js'
import { createMockProvider } from '../src/providers/mock-provider.js'
import { ProviderHealthBoard } from '../src/routing/provider-health.js'
import { ProviderRegistry } from '../src/routing/provider-registry.js'
import { TypedEmitter } from '../src/util/emitter.js'
import { silentLogger } from '../src/util/logger.js'

function board(now: { t: number }) {
  const provider = createMockProvider({ family: 'sms', seed: 1 })
  const events = new TypedEmitter<ParleyEvents>(() => undefined)
  const health = new ProviderHealthBoard({
    registry: new ProviderRegistry([provider]),
    clock: { now: () => now.t },
    events,
    logger: silentLogger,
    breaker: { threshold: 1, openMs: 1000 },
  })
  return { provider, health, events }
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

describe('ProviderHealthBoard.breakerStates', () => {
  it('reports every registered provider, closed until called, and reads a breaker past its cool-down as half-open without moving it', () => {
    const now = { t: 0 }
    const { provider, health, events } = board(now)
    const transitions: string[] = []
    events.on('provider.breaker_transition', (e) => transitions.push(e.to))
    expect(health.breakerStates()).toEqual([
      { provider: provider.name, family: 'sms', state: 'closed' },
    ])

    health.record(provider, { kind: 'transient', error: 'down' })
    expect(health.breakerStates()[0]?.state).toBe('open')
    now.t = 1000

    expect(health.breakerStates()[0]?.state).toBe('half_open')
    expect(health.breakerStates()[0]?.state).toBe('half_open')
    expect(transitions).toEqual(['open'])
  })
})
