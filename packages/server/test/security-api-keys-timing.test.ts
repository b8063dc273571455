import * as crypto from 'node:crypto'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { checkBearer, parseApiKeys } from '../src/http/security/api-keys.js'

// The real timingSafeEqual, wrapped in a spy that counts the comparisons
// checkBearer makes. Kept in its own file so the mock touches no other test.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) }
})

const SECRETS = [
  'key-number-one-000000',
  'key-number-two-000000',
  'key-number-three-0000',
  'key-number-four-00000',
]

describe('checkBearer compares in constant time', () => {
  const keys = parseApiKeys(SECRETS.join(','))
  const spy = vi.mocked(crypto.timingSafeEqual)

  beforeEach(() => {
    spy.mockClear()
  })

  it.each(SECRETS.map((secret, index) => [index + 1, secret]))(
    'compares every key when key %i matches',
    (_, secret) => {
      expect(checkBearer(`Bearer ${secret}`, keys).ok).toBe(true)
      expect(spy).toHaveBeenCalledTimes(SECRETS.length)
    },
  )

  it('compares every key when none matches', () => {
    expect(checkBearer('Bearer not-a-configured-key', keys).ok).toBe(false)
    expect(spy).toHaveBeenCalledTimes(SECRETS.length)
  })

  it('compares 32-byte digests, never the raw token or key', () => {
    checkBearer(`Bearer ${SECRETS[0]}-and-more-text`, keys)
    for (const [a, b] of spy.mock.calls) {
      expect(a).toHaveLength(32)
      expect(b).toHaveLength(32)
    }
  })
})
