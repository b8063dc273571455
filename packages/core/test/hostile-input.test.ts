/**
 * Input built to make parsing slow or to smuggle control characters. The
 * bodies here are large (up to the 1 MiB request limit); the quadratic
 * code these tests guard against took minutes on them, so the generous
 * per-test limit below only catches a return of that class of bug.
 */
import { describe, expect, it } from 'vitest'
import { parseEmail } from '../src/messages/email-address.js'
import { makeSnippet } from '../src/messages/snippet.js'

const MIB = 1024 * 1024
const LIMIT_MS = 20_000

describe('email addresses from hostile input', () => {
  it.each([
    ['spaces between two words', `a${' '.repeat(MIB)}b`],
    ['spaces before an unclosed bracket', `a${' '.repeat(MIB)}<`],
    ['a run of opening brackets', '<'.repeat(MIB)],
    ['a long quoted name', `"${'x'.repeat(MIB)}" <ann@example.com>`],
  ])(
    'refuses %s without reading it twice',
    (_, text) => {
      expect(parseEmail(text)).toEqual({
        ok: false,
        reason: 'is not an email address',
      })
    },
    LIMIT_MS,
  )

  it.each([
    'Ann\r\nBcc: evil@example.com <ann@example.com>',
    'Ann\n <ann@example.com>',
    'Ann\u001b[31m <ann@example.com>',
    'ann@example.com\r\n',
    '"Ann\u0000" <ann@example.com>',
  ])('refuses control characters in %j', (text) => {
    expect(parseEmail(text).ok).toBe(false)
  })

  it('still reads display names, quoted or not', () => {
    expect(parseEmail('Ann Lee <Ann@Example.com>')).toEqual({
      ok: true,
      participant: 'ann@example.com',
    })
    expect(parseEmail('"Lee, Ann" <ann+x@example.com>')).toEqual({
      ok: true,
      participant: 'ann@example.com',
    })
    expect(parseEmail('<ann@example.com>').ok).toBe(true)
    expect(parseEmail('Ann <ann@example.com> <b@example.com>').ok).toBe(false)
  })
})

describe('email snippets from hostile bodies', () => {
  it.each([
    ['unclosed tags', '<'.repeat(MIB)],
    ['unclosed comments', '<!--'.repeat(MIB / 4)],
    ['unclosed script tags', '<script>'.repeat(MIB / 8)],
    ['tags and text', 'x<b>'.repeat(MIB / 4)],
  ])(
    'makes a snippet of %s in one pass',
    (_, body) => {
      expect(makeSnippet(body, 'email', 64).length).toBeLessThanOrEqual(64 * 2)
    },
    LIMIT_MS,
  )

  it('keeps the text before markup that never closes', () => {
    expect(makeSnippet('Hello <b>Bob</b>, see <unclosed', 'email', 64)).toBe(
      'Hello Bob , see',
    )
  })
})

describe('snippets of graphemes with endless combining marks', () => {
  it('stay a few hundred code units long', () => {
    const body = `e${'\u0301'.repeat(150_000)} and more`

    const snippet = makeSnippet(body, 'sms', 64)

    expect(snippet.length).toBeLessThanOrEqual(64 * 16)
    expect(snippet.startsWith('e\u0301')).toBe(true)
  })
})
