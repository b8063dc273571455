/**
 * What a provider resolves with, checked before the dispatcher acts on it:
 * custom providers written in JavaScript can resolve with anything.
 */
import { describe, expect, it } from 'vitest'
import { checkedOutcome } from '../src/providers/provider.js'

describe('checkedOutcome', () => {
  it.each(['transient', 'permanent', 'rate_limited'])(
    'gives a %s outcome without an error text a reason that says so',
    (kind) => {
      for (const error of [undefined, null]) {
        expect(checkedOutcome({ kind, error })).toEqual({
          kind,
          error: 'the provider gave no reason',
        })
      }
      expect(checkedOutcome({ kind })).toEqual({
        kind,
        error: 'the provider gave no reason',
      })
    },
  )

  it('keeps an error text, and gives any other value as text', () => {
    expect(checkedOutcome({ kind: 'transient', error: 'HTTP 503' })).toEqual({
      kind: 'transient',
      error: 'HTTP 503',
    })
    expect(
      checkedOutcome({ kind: 'permanent', error: new Error('refused') }),
    ).toEqual({ kind: 'permanent', error: 'Error: refused' })
  })
})
