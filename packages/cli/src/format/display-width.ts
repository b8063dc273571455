const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' })

// Marks where `cutToWidth` cut; it takes one column.
const ellipsis = '\u2026'

// Combining marks and format characters (zero-width joiner, variation
// selectors...) take no column of their own.
const zeroWidth = /^[\p{Mn}\p{Me}\p{Cf}]+$/u

// Emoji shown as pictures, and the East Asian Wide and Fullwidth blocks,
// take two columns in a terminal.
const wide = new RegExp(
  [
    '\\p{Emoji_Presentation}',
    '\\ufe0f',
    '[\\u1100-\\u115f\\u2e80-\\u303e\\u3041-\\u33ff\\u3400-\\u4dbf]',
    '[\\u4e00-\\u9fff\\ua000-\\ua4cf\\uac00-\\ud7a3\\uf900-\\ufaff]',
    '[\\ufe30-\\ufe4f\\uff00-\\uff60\\uffe0-\\uffe6]',
    '[\\u{20000}-\\u{3fffd}]',
  ].join('|'),
  'u',
)

/**
 * The number of terminal columns `text` takes, counting by grapheme:
 * combining marks take none, emoji and East Asian wide characters take two.
 * Expects printable text (see `toPrintable`).
 */
export function displayWidth(text: string): number {
  let width = 0
  for (const { segment } of graphemes.segment(text)) {
    width += graphemeWidth(segment)
  }
  return width
}

/**
 * Cuts `text` to at most `width` terminal columns, ending it with `…` when
 * anything was cut. Cuts between graphemes, never inside one, so an emoji
 * or an accented letter is kept whole or left out. Expects printable text.
 *
 * @example
 * cutToWidth('connection refused', 10) // 'connectio…'
 */
export function cutToWidth(text: string, width: number): string {
  if (displayWidth(text) <= width) return text
  if (width < 1) return ''

  let kept = ''
  let used = 0
  for (const { segment } of graphemes.segment(text)) {
    const next = used + graphemeWidth(segment)
    if (next > width - 1) break
    kept += segment
    used = next
  }
  return kept.trimEnd() + ellipsis
}

function graphemeWidth(grapheme: string): number {
  if (zeroWidth.test(grapheme)) return 0
  return wide.test(grapheme) ? 2 : 1
}
