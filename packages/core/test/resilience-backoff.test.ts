import { describe, expect, it } from 'vitest'
import { backoffDelay } from '../src/resilience/backoff.js'

describe('backoffDelay', () => {
  const policy = { baseMs: 1000, maxMs: 5000 }
  const ceiling = () => 1 - Number.EPSILON

  it('doubles the ceiling with each retry up to the cap', () => {
    const delays = [1, 2, 3, 4, 5, 6].map((retry) =>
      backoffDelay(policy, retry, ceiling),
    )

    expect(delays).toEqual([999, 1999, 3999, 4999, 4999, 4999])
  })

  it('draws the full jitter range from zero to the ceiling', () => {
    expect(backoffDelay(policy, 3, () => 0)).toBe(0)
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(2000)
  })

  it('treats retry numbers below 1 as the first retry', () => {
    expect(backoffDelay(policy, 0, ceiling)).toBe(999)
    expect(backoffDelay(policy, -5, ceiling)).toBe(999)
  })

  it('stays finite and capped for very large retry numbers', () => {
    expect(backoffDelay(policy, 10_000, ceiling)).toBe(4999)
  })
})
