import { describe, expect, it } from 'vitest'
import { createMockProvider, createParley, resolveConfig } from '@parley/core'
import { openSqlite } from '@parley/core/sqlite'

type IntegerOption = Exclude<
  keyof ReturnType<typeof resolveConfig>,
  'defaultRegion'
>

// Options whose largest value needs another option raised with it.
const COMPANIONS: Partial<Record<IntegerOption, object>> = {
  backoffBaseMs: { backoffMaxMs: 3_600_000 },
  providerTimeoutMs: { leaseMs: 601_000 },
}

// Each option's accepted range with every other option at its default (so
// backoffMaxMs starts at backoffBaseMs, and leaseMs a second above the
// provider timeout).
const BOUNDS: ReadonlyArray<readonly [IntegerOption, number, number]> = [
  ['maxAttachments', 0, 100],
  ['snippetLength', 1, 1000],
  ['dispatchConcurrency', 1, 1000],
  ['inboundBatchSize', 1, 10_000],
  ['pollIntervalMs', 10, 60_000],
  ['maxRetries', 0, 100],
  ['backoffBaseMs', 1, 3_600_000],
  ['backoffMaxMs', 1000, 86_400_000],
  ['leaseMs', 11_000, 86_400_000],
  ['providerTimeoutMs', 1, 600_000],
  ['retryAfterMaxMs', 0, 86_400_000],
  ['maxWriteBatch', 1, 10_000],
]

function thrown(run: () => unknown): Error {
  try {
    run()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error, but nothing was thrown')
}

describe('resolveConfig', () => {
  it('fills in the documented defaults', () => {
    expect(resolveConfig()).toEqual({
      defaultRegion: 'US',
      maxAttachments: 8,
      snippetLength: 64,
      dispatchConcurrency: 16,
      inboundBatchSize: 100,
      pollIntervalMs: 200,
      leaseMs: 60_000,
      maxRetries: 8,
      backoffBaseMs: 1000,
      backoffMaxMs: 300_000,
      providerTimeoutMs: 10_000,
      retryAfterMaxMs: 3_600_000,
      maxWriteBatch: 512,
      breakerThreshold: 20,
      breakerOpenMs: 30_000,
      idempotencyTtlMs: 86_400_000,
      rateLimitPerSenderPerMin: 60,
      rateLimitPerIpPerMin: 120,
      rateLimitWebhookPerIpPerMin: 6000,
      rateLimitMaxKeys: 100_000,
      retentionDays: 7,
      retentionBatchSize: 500,
      retentionIntervalMs: 60_000,
    })
  })

  it('returns a frozen object', () => {
    const config = resolveConfig({ maxRetries: 2 })

    expect(Object.isFrozen(config)).toBe(true)
    expect(config.maxRetries).toBe(2)
  })

  it('treats an option set to undefined as unset', () => {
    expect(resolveConfig({ maxRetries: undefined }).maxRetries).toBe(8)
  })

  it.each(['pollIntervalMS', 'maxRetry', 'leaseSecs', 'toString'])(
    'refuses an option it does not have, such as a misspelt %s',
    (name) => {
      expect(() => resolveConfig({ [name]: 1 } as never)).toThrow(
        new RangeError(
          name === 'pollIntervalMS'
            ? 'config: pollIntervalMS is not an option (did you mean pollIntervalMs?)'
            : `config: ${name} is not an option`,
        ),
      )
    },
  )

  it.each([null, 'fast', 3, []])(
    'refuses config %j, which is not an object',
    (config) => {
      expect(() => resolveConfig(config as never)).toThrow(TypeError)
    },
  )

  it('accepts another known region', () => {
    expect(resolveConfig({ defaultRegion: 'GB' }).defaultRegion).toBe('GB')
  })

  it.each(['ZZ', 'USA', '', 'United States'])(
    'rejects the unknown region %j with a RangeError naming it',
    (region) => {
      const error = thrown(() => resolveConfig({ defaultRegion: region }))

      expect(error).toBeInstanceOf(RangeError)
      expect(error.message).toContain('config.defaultRegion')
      expect(error.message).toContain(`got ${region}`)
    },
  )

  it('rejects a region that is not a string', () => {
    const error = thrown(() =>
      resolveConfig({ defaultRegion: 1 as unknown as string }),
    )

    expect(error.message).toContain('config.defaultRegion')
    expect(error.message).toContain('got 1')
  })

  describe.each(BOUNDS)('%s', (name, min, max) => {
    it('accepts its bounds', () => {
      expect(resolveConfig({ [name]: min })[name]).toBe(min)
      const companions = COMPANIONS[name] ?? {}
      expect(resolveConfig({ ...companions, [name]: max })[name]).toBe(max)
    })

    it('rejects values outside its bounds with a RangeError', () => {
      for (const value of [min - 1, max + 1]) {
        const error = thrown(() => resolveConfig({ [name]: value }))

        expect(error).toBeInstanceOf(RangeError)
        expect(error.message).toContain(`config.${name}`)
        expect(error.message).toContain(`got ${value}`)
      }
    })

    it('rejects values that are not whole numbers with a TypeError', () => {
      for (const value of [1.5, Number.NaN, Infinity, '8', null, true]) {
        const error = thrown(() =>
          resolveConfig({ [name]: value as unknown as number }),
        )

        expect(error).toBeInstanceOf(TypeError)
        expect(error.message).toContain(`config.${name}`)
        expect(error.message).toContain(`got ${String(value)}`)
      }
    })
  })

  it('rejects a lease under 1000 ms and a backoff cap over a day', () => {
    expect(() => resolveConfig({ leaseMs: 999 })).toThrow(RangeError)
    expect(() => resolveConfig({ backoffMaxMs: 86_400_001 })).toThrow(
      /config\.backoffMaxMs.*got 86400001/,
    )
  })

  it('rejects a backoff cap below the backoff base, naming both', () => {
    const error = thrown(() =>
      resolveConfig({ backoffBaseMs: 5000, backoffMaxMs: 4999 }),
    )

    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toContain('config.backoffMaxMs')
    expect(error.message).toContain('5000')
    expect(error.message).toContain('got 4999')
    expect(
      resolveConfig({ backoffBaseMs: 5000, backoffMaxMs: 5000 }).backoffMaxMs,
    ).toBe(5000)
  })

  it('requires the lease to exceed the provider timeout by a second', () => {
    const error = thrown(() =>
      resolveConfig({ providerTimeoutMs: 10_000, leaseMs: 10_999 }),
    )

    expect(error).toBeInstanceOf(RangeError)
    expect(error.message).toContain('config.leaseMs')
    expect(error.message).toContain('providerTimeoutMs (10000)')
    expect(error.message).toContain('got 10999')
    expect(
      resolveConfig({ providerTimeoutMs: 10_000, leaseMs: 11_000 }).leaseMs,
    ).toBe(11_000)
  })

  it('checks the lease against the default provider timeout', () => {
    expect(() => resolveConfig({ leaseMs: 5000 })).toThrow(/config\.leaseMs/)
    expect(() => resolveConfig({ providerTimeoutMs: 59_001 })).toThrow(
      /config\.leaseMs/,
    )
  })
})

describe('createParley configuration', () => {
  it('refuses a bad configuration before touching the database', async () => {
    const db = openSqlite({ filename: ':memory:' })
    try {
      await expect(
        createParley({
          db,
          providers: [createMockProvider({ family: 'sms' })],
          config: { maxRetries: -1 },
        }),
      ).rejects.toThrow(/config\.maxRetries/)
      const tables = await db.kysely.introspection.getTables()
      expect(tables).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('refuses two providers with the same name', async () => {
    const db = openSqlite({ filename: ':memory:' })
    try {
      await expect(
        createParley({
          db,
          providers: [
            createMockProvider({ family: 'sms', name: 'dup' }),
            createMockProvider({ family: 'email', name: 'dup' }),
          ],
        }),
      ).rejects.toThrow(RangeError)
    } finally {
      await db.close()
    }
  })
})
