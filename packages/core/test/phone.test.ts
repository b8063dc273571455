import { describe, expect, it } from 'vitest'
import { isKnownRegion, parsePhone } from '../src/messages/phone.js'

const participant = (text: string, region = 'US', allowSenderId = false) => {
  const parsed = parsePhone(text, region, allowSenderId)
  return parsed.ok ? parsed.participant : undefined
}

describe('parsePhone', () => {
  it.each([
    '(804) 555-1234',
    '804.555.1234',
    '804-555-1234',
    '804 555 1234',
    '8045551234',
    '+1 804 555 1234',
    '+1 (804) 555-1234',
    '+18045551234',
    '18045551234',
    '1 804 555 1234',
    '  (804) 555-1234  ',
  ])('reads %s in the US as +18045551234', (text) => {
    expect(participant(text)).toBe('+18045551234')
  })

  it.each(['123', '4567', '55555', '898211'])(
    'keeps the short code %s as digits',
    (text) => {
      expect(participant(text)).toBe(text)
    },
  )

  it.each(['(804) 555', '804-555', '80 45', '12.34'])(
    'rejects the cut-off number %s instead of reading it as a short code',
    (text) => {
      expect(participant(text)).toBeUndefined()
    },
  )

  it('does not read a short code written with + as a short code', () => {
    expect(participant('+12345')).toBeUndefined()
  })

  it.each([
    ['letters', '1-800-FLOWERS'],
    ['a vanity number', '1-800-356-9377a'],
    ['an x extension', '+18045551234 x12'],
    ['an ext extension', '+1 804 555 1234 ext. 12'],
    ['an RFC 3966 extension', '+18045551234;ext=12'],
    ['a # extension', '8045551234#12'],
    ['a tel: URI', 'tel:+18045551234'],
    ['two digits', '12'],
    ['seven digits', '5551234'],
    ['nine digits', '804555123'],
    ['eleven digits not starting with 1', '28045551234'],
    ['too many digits', '+1804555123456'],
    ['a + alone', '+'],
    ['formatting alone', '() -'],
    ['a + in the middle', '1+8045551234'],
    ['an empty string', ''],
    ['white space', '   '],
    ['a sender ID where none is allowed', 'ACME'],
  ])('rejects %s', (_, text) => {
    const parsed = parsePhone(text, 'US', false)

    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.reason).not.toBe('')
  })

  it('normalizes a non-US number written with +', () => {
    expect(participant('+44 20 7946 0958')).toBe('+442079460958')
    expect(participant('+33 1 23 45 67 89')).toBe('+33123456789')
  })

  it('reads a number without + in the default region', () => {
    expect(participant('020 7946 0958', 'GB')).toBe('+442079460958')
    expect(participant('+1 804 555 1234', 'GB')).toBe('+18045551234')
  })

  it('reads the same digits differently in different regions', () => {
    expect(participant('020 7946 0958', 'GB')).not.toBe(
      participant('020 7946 0958', 'DE'),
    )
  })

  it('accepts an alphanumeric sender ID only where allowed', () => {
    expect(participant('ACME', 'US', true)).toBe('ACME')
    expect(participant('ACME', 'US', false)).toBeUndefined()
  })

  it('still reads numbers and short codes when sender IDs are allowed', () => {
    expect(participant('(804) 555-1234', 'US', true)).toBe('+18045551234')
    expect(participant('55555', 'US', true)).toBe('55555')
  })

  it('does not take a number with letters for a sender ID', () => {
    expect(participant('1-800-FLOWERS', 'US', true)).toBeUndefined()
  })

  // Answers are cached by text and region: a repeat gives the same answer,
  // and the same text read in another region is read afresh.
  it('answers a repeat as it answered the first time, per region', () => {
    const cases: Array<[string, string, string | undefined]> = [
      ['07911 123456', 'GB', '+447911123456'],
      ['07911 123456', 'US', undefined],
      ['(804) 555-1234', 'US', '+18045551234'],
      ['(804) 555-1234', 'GB', '+448045551234'],
      ['804 555 1234', 'CA', '+18045551234'],
    ]
    for (let round = 0; round < 3; round += 1) {
      for (const [text, region, expected] of cases) {
        expect(participant(text, region)).toBe(expected)
      }
    }
  })

  it('still reads every number right after more numbers than it keeps', () => {
    for (let n = 0; n < 12_000; n += 1) {
      const national = String(2_015_550_000 + n)
      expect(participant(national)).toBe(`+1${national}`)
    }
    expect(participant('07911 123456', 'GB')).toBe('+447911123456')
    expect(participant('(804) 555', 'US')).toBeUndefined()
  })
})

describe('isKnownRegion', () => {
  it('knows real two-letter regions and no others', () => {
    expect(isKnownRegion('US')).toBe(true)
    expect(isKnownRegion('GB')).toBe(true)
    expect(isKnownRegion('ZZ')).toBe(false)
    expect(isKnownRegion('USA')).toBe(false)
  })
})
