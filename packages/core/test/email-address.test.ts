import { describe, expect, it } from 'vitest'
import { parseEmail } from '../src/messages/email-address.js'

const participant = (text: string) => {
  const parsed = parseEmail(text)
  return parsed.ok ? parsed.participant : undefined
}

describe('parseEmail', () => {
  it('folds the address to lower case', () => {
    expect(participant('Ann@Example.COM')).toBe('ann@example.com')
  })

  it('reduces a display name to the address', () => {
    expect(participant('Ann <Ann@Example.com>')).toBe('ann@example.com')
    expect(participant('"Doe, Jane" <jane@example.com>')).toBe(
      'jane@example.com',
    )
    expect(participant('<bare@example.com>')).toBe('bare@example.com')
    expect(participant('  Ann   <ann@example.com>  ')).toBe('ann@example.com')
  })

  it('drops a +tag from the local part', () => {
    expect(participant('jane+news@example.com')).toBe('jane@example.com')
    expect(participant('Jane <Jane+A+B@Example.com>')).toBe('jane@example.com')
  })

  it('rejects an address that is only a +tag', () => {
    expect(parseEmail('+only@example.com')).toEqual({
      ok: false,
      reason: 'has nothing before its +tag',
    })
  })

  it('keeps dots in the local part, since they are significant', () => {
    expect(participant('j.a.ne@example.com')).toBe('j.a.ne@example.com')
    expect(participant('jane@example.com')).not.toBe(
      participant('j.ane@example.com'),
    )
  })

  it('keeps subdomains and hyphens in the domain', () => {
    expect(participant('ops@mail.eu-west.example.co.uk')).toBe(
      'ops@mail.eu-west.example.co.uk',
    )
  })

  it.each([
    ['garbage', 'not an email'],
    ['an empty string', ''],
    ['white space', '   '],
    ['no @', 'ann.example.com'],
    ['nothing before @', '@example.com'],
    ['nothing after @', 'ann@'],
    ['two @', 'ann@@example.com'],
    ['a single-label domain', 'ann@localhost'],
    ['a leading dot', '.ann@example.com'],
    ['a trailing dot', 'ann.@example.com'],
    ['two dots in a row', 'a..nn@example.com'],
    ['a space in the local part', 'a nn@example.com'],
    ['an empty domain label', 'ann@example..com'],
    ['a domain label starting with a hyphen', 'ann@-example.com'],
    ['an underscore in the domain', 'ann@ex_ample.com'],
    ['text after the angle brackets', 'Ann <ann@example.com> x'],
    ['an unclosed angle bracket', 'Ann <ann@example.com'],
    ['nested angle brackets', 'Ann <<ann@example.com>>'],
    ['a phone number', '+18045551234'],
    ['a local part over 64 characters', `${'a'.repeat(65)}@example.com`],
    ['an address over 254 characters', `a@${'b'.repeat(250)}.com`],
  ])('rejects %s', (_, text) => {
    expect(parseEmail(text).ok).toBe(false)
  })
})
