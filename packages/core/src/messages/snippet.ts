import type { Channel } from './types.js'

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

const ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
}

/**
 * The preview of a body: its first `length` user-perceived characters
 * (grapheme clusters, so an emoji or accented letter is never cut in half),
 * with HTML reduced to its text for email and runs of white space folded.
 */
export function makeSnippet(
  body: string,
  channel: Channel,
  length: number,
): string {
  // Generous: entities and white space shrink the text after this point.
  const enough = length * 16 + 1024
  const text =
    channel === 'email'
      ? decodeEntities(htmlToText(body, enough))
      : body.slice(0, enough)
  const folded = text.replace(/\s+/g, ' ').trim()
  return capCodeUnits(takeGraphemes(folded, length), length * 16)
}

// A grapheme may carry any number of combining marks; a preview must stay
// small whatever the body holds. Whole graphemes are kept while they fit in
// `max` code units (an emoji family is 11); only a first grapheme larger
// than that on its own is cut, never inside a surrogate pair.
function capCodeUnits(text: string, max: number): string {
  if (text.length <= max) return text
  let out = ''
  for (const { segment } of segmenter.segment(text)) {
    if (out.length + segment.length > max) break
    out += segment
  }
  if (out !== '') return out
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 1)) ? max - 1 : max
  return text.slice(0, end)
}

/** The first `count` grapheme clusters of `text`. */
export function takeGraphemes(text: string, count: number): string {
  if (text.length <= count) return text
  let out = ''
  let taken = 0
  for (const { segment } of segmenter.segment(text)) {
    if (taken === count) break
    out += segment
    taken += 1
  }
  return out
}

// Reduces HTML to its text in one forward pass. Every search resumes where
// the last one ended, and a missing closing `>` (or `-->`, or end tag) ends
// the scan, so the work stays linear however the markup is broken. It stops
// once far more text than a snippet needs has been collected.
function htmlToText(html: string, enough: number): string {
  const lower = html.toLowerCase()
  let out = ''
  let pos = 0
  while (pos < html.length && out.length < enough) {
    const open = html.indexOf('<', pos)
    if (open < 0) return out + html.slice(pos)
    out += html.slice(pos, open) + ' '
    const next = skipMarkup(lower, open)
    if (next < 0) return out
    pos = next
  }
  return out
}

// Where the text after the markup at `open` starts, or -1 when the markup
// never ends (the rest of the body is then markup, not text).
function skipMarkup(lower: string, open: number): number {
  if (lower.startsWith('<!--', open)) return after(lower, '-->', open + 4)
  const raw = /^<(script|style)\b/.exec(lower.slice(open, open + 8))?.[1]
  if (raw) {
    const close = lower.indexOf(`</${raw}`, open)
    return close < 0 ? -1 : after(lower, '>', close)
  }
  return after(lower, '>', open + 1)
}

function after(text: string, token: string, from: number): number {
  const at = text.indexOf(token, from)
  return at < 0 ? -1 : at + token.length
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, decodeEntity)
}

function decodeEntity(whole: string, name: string): string {
  const lower = name.toLowerCase()
  if (lower.startsWith('#')) {
    const code = lower.startsWith('#x')
      ? Number.parseInt(lower.slice(2), 16)
      : Number.parseInt(lower.slice(1), 10)
    return isScalar(code) ? String.fromCodePoint(code) : whole
  }
  return ENTITIES[lower] ?? whole
}

function isScalar(code: number): boolean {
  return (
    Number.isInteger(code) &&
    code > 0 &&
    code <= 0x10ffff &&
    (code < 0xd800 || code > 0xdfff)
  )
}
