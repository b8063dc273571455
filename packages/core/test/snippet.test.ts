import { describe, expect, it } from 'vitest'
import { makeSnippet, takeGraphemes } from '../src/messages/snippet.js'

const graphemes = (text: string) => [
  ...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text),
]

describe('makeSnippet', () => {
  it('keeps a short body whole', () => {
    expect(makeSnippet('Hello there', 'sms', 64)).toBe('Hello there')
  })

  it('cuts a long body at the given number of characters', () => {
    const body = 'abcdefghij'.repeat(10)

    expect(makeSnippet(body, 'sms', 64)).toBe(body.slice(0, 64))
  })

  it('never splits an emoji with a skin tone or a ZWJ family', () => {
    for (const emoji of ['👍🏽', '👨‍👩‍👧‍👦', '🇺🇸', '🏳️‍🌈']) {
      const snippet = makeSnippet(emoji.repeat(70), 'sms', 64)

      expect(snippet).toBe(emoji.repeat(64))
      expect(graphemes(snippet)).toHaveLength(64)
    }
  })

  it('never separates a letter from its combining accent', () => {
    const body = 'e\u0301'.repeat(70)

    const snippet = makeSnippet(body, 'sms', 64)

    expect(snippet).toBe('e\u0301'.repeat(64))
    expect(snippet).toHaveLength(128)
  })

  it('cuts mixed text on a grapheme boundary near the limit', () => {
    const body = `${'a'.repeat(63)}👨‍👩‍👧‍👦tail`

    expect(makeSnippet(body, 'sms', 64)).toBe(`${'a'.repeat(63)}👨‍👩‍👧‍👦`)
    expect(makeSnippet(body, 'sms', 63)).toBe('a'.repeat(63))
  })

  it('folds runs of white space and trims the ends', () => {
    expect(makeSnippet('  Hi\n\n\tthere   you \r\n', 'sms', 64)).toBe(
      'Hi there you',
    )
  })

  it('keeps markup in SMS and MMS bodies', () => {
    expect(makeSnippet('<b>bold</b> &amp;', 'sms', 64)).toBe(
      '<b>bold</b> &amp;',
    )
    expect(makeSnippet('<i>x</i>', 'mms', 64)).toBe('<i>x</i>')
  })

  it('strips tags from email bodies', () => {
    expect(
      makeSnippet(
        '<html><body><p>Hello <b>Bob</b></p></body></html>',
        'email',
        64,
      ),
    ).toBe('Hello Bob')
  })

  it('separates the text of adjacent block elements', () => {
    expect(makeSnippet('<p>one</p><p>two</p><br/>three', 'email', 64)).toBe(
      'one two three',
    )
  })

  it('drops script and style contents and comments from email', () => {
    const body =
      '<style>p { color: red }</style><script type="text/javascript">alert("x")</script>' +
      '<!-- hidden --><p>Visible</p><SCRIPT>evil()</SCRIPT >'

    expect(makeSnippet(body, 'email', 64)).toBe('Visible')
  })

  it('decodes named and numeric entities in email', () => {
    const body =
      '<p>Tom&nbsp;&amp;&#32;Jerry &lt;3 &quot;hi&quot; &apos;&#x1F600;&#128512;</p>'

    expect(makeSnippet(body, 'email', 64)).toBe('Tom & Jerry <3 "hi" \'😀😀')
  })

  it('leaves unknown and invalid entities as written', () => {
    expect(makeSnippet('&bogus; &#xD800; &#0; &#x110000;', 'email', 64)).toBe(
      '&bogus; &#xD800; &#0; &#x110000;',
    )
  })

  it('cuts email text after stripping, counting only visible characters', () => {
    const body = `<div style="a very long attribute ${'x'.repeat(100)}">${'y'.repeat(80)}</div>`

    expect(makeSnippet(body, 'email', 64)).toBe('y'.repeat(64))
  })
})

describe('takeGraphemes', () => {
  it('returns the text when it is not longer than asked', () => {
    expect(takeGraphemes('', 3)).toBe('')
    expect(takeGraphemes('abc', 3)).toBe('abc')
  })

  it('counts a surrogate pair as one character', () => {
    expect(takeGraphemes('😀😀😀', 2)).toBe('😀😀')
  })
})
