const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' })

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

function graphemeWidth(grapheme: string): number {
  if (zeroWidth.test(grapheme)) return 0
  return wide.test(grapheme) ? 2 : 1
}
